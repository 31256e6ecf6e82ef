/**
 * The network the soak runs, all on 127.0.0.1 in a temp dir: anvil (from `@foundry-rs/anvil`,
 * a block a second), the contracts, an MQTT broker (the embedded aedes, or `MQTT_URL`), one
 * gateway process and `validators` validator processes (`depin gateway run` / `depin validator
 * run`, each with its own key, config, stores and log file), and a simulated fleet registered on
 * the DeviceRegistry. Short epochs, as the tests' `shortEpochBlueprint()`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Account, Address } from 'viem'
import { privateKeyToAddress } from 'viem/accounts'
import { networkParametersOf } from '../../src/blueprint/loadBlueprint.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { deployContracts } from '../../src/chain/deployContracts.ts'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { joinAsValidator } from '../../src/chain/joinAsValidator.ts'
import { listGateway } from '../../src/chain/listGateway.ts'
import { loadOrCreateKey } from '../../src/chain/loadOrCreateKey.ts'
import { anvilAccounts, startAnvil } from '../../src/chain/startAnvil.ts'
import { startEmbeddedBroker } from '../../src/network/startEmbeddedBroker.ts'
import { createFleet } from '../../src/usecases/environment/simulator/createFleet.ts'
import { registerFleet } from '../../src/usecases/environment/simulator/registerFleet.ts'
import { shortEpochBlueprint } from '../../test/helpers/testBlueprint.ts'
import { createRoleProcess, type RoleProcess } from './roleProcess.ts'

/** What the validators are configured with; the soak's settlement deadline follows from them. */
export const LEADER_TIMEOUT_MS = 3_000
export const AGREEMENT_TIMEOUT_MS = 4_000
/** Longer than the gateway takes to come back from a SIGKILL (restart delay + start), on a loaded machine. */
export const GATEWAY_WAIT_MS = 6_000

export type StartSoakNetworkParameters = {
  dir: string
  stations: number
  validators: number
  /** Seed of the fleet (places, keys, values). */
  fleetSeed: number
  /** Called when a role process exits without being asked to. */
  onUnexpectedExit?: (role: RoleProcess) => void
}

/**
 * A port free now, below the OS's ephemeral range (32768–60999 on Linux): a role keeps its port
 * across restarts, and one from that range could be handed to another process's socket while
 * the role is down (other tests on a shared machine take ports with `listen(0)`).
 */
const taken = new Set<number>()
async function stablePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (taken.has(port)) continue
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (free) {
      taken.add(port)
      return port
    }
  }
}

/** Builds and starts the network; `stop()` of the result ends what is still running. */
export async function startSoakNetwork(parameters: StartSoakNetworkParameters) {
  const { dir, stations, validators } = parameters
  const teardown: (() => unknown)[] = []
  const stopRest = async () => {
    for (const step of teardown.splice(0).reverse()) await step()
  }
  try {
    const { raw, blueprint } = shortEpochBlueprint()
    mkdirSync(join(dir, 'logs'), { recursive: true })
    const anvil = await startAnvil({ blockTime: 1 })
    teardown.push(() => anvil.stop())
    const admin = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[0] })
    const deployment = await deployContracts({ clients: admin, parameters: networkParametersOf(blueprint) })
    writeDeployment(join(dir, 'deployment.json'), deployment)
    writeFileSync(join(dir, 'blueprint.json'), JSON.stringify(raw))

    // a few value faults, so the validators reject some readings as they would in the field
    const fleet = createFleet({
      size: stations,
      blueprint,
      seed: parameters.fleetSeed,
      faults: { stuck: 1, outOfRange: 1, liar: 1 },
    })
    const owners = await Promise.all(
      anvilAccounts.slice(1, 3).map((privateKey) => createChainClients({ rpcUrl: anvil.rpcUrl, privateKey })),
    )
    await registerFleet({ fleet, ownerClients: owners, deployment })

    // a broker of its own (outliving every gateway), or the machine's, on topics of this run only
    const runId = `soak-${process.pid}-${Date.now().toString(36)}`
    let brokerUrl = process.env.MQTT_URL
    if (!brokerUrl) {
      const broker = await startEmbeddedBroker()
      teardown.push(() => broker.close())
      brokerUrl = broker.url
    }
    const topicPrefix = `depin-${runId}/v1`

    const gatewayPort = await stablePort()
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`
    const gatewayId = privateKeyToAddress(loadOrCreateKey(join(dir, 'gateway', 'key'))) as Address
    await listGateway({ sender: admin, deployment, gateway: gatewayId, url: gatewayUrl })
    const gatewayConfig = join(dir, 'gateway.json')
    writeFileSync(
      gatewayConfig,
      JSON.stringify({
        dataDir: 'gateway',
        rpcUrl: anvil.rpcUrl,
        blueprint: 'blueprint.json',
        deployment: 'deployment.json',
        port: gatewayPort,
        mqttUrl: brokerUrl,
        mqttTopicPrefix: topicPrefix,
        // fixed across restarts: the broker keeps the session and what arrives while it is down
        mqttClientId: `depin-gateway-${runId}`,
        signatureThreads: 0,
        keyFile: 'gateway/key',
      }),
    )
    const roles: RoleProcess[] = []
    teardown.push(async () => {
      await Promise.all(roles.map((r) => r.kill()))
      await Promise.all(roles.map((r) => r.closeLog()))
    })
    const role = (name: string, kind: 'gateway' | 'validator', args: string[]) => {
      const created = createRoleProcess({
        name,
        kind,
        args,
        logFile: join(dir, 'logs', `${name}.log`),
        ...(parameters.onUnexpectedExit ? { onUnexpectedExit: parameters.onUnexpectedExit } : {}),
      })
      roles.push(created)
      return created
    }
    const gateway = role('gateway', 'gateway', [
      'src/cli/main.ts',
      'gateway',
      'run',
      '--config',
      gatewayConfig,
    ])

    const validatorRoles: RoleProcess[] = []
    const validatorAddresses: Address[] = []
    for (let i = 0; i < validators; i++) {
      const vdir = join(dir, `v${i}`)
      mkdirSync(vdir, { recursive: true })
      const clients = await createChainClients({
        rpcUrl: anvil.rpcUrl,
        privateKey: loadOrCreateKey(join(vdir, 'key')),
      })
      await joinAsValidator({
        sponsor: admin,
        validator: clients,
        deployment,
        bond: blueprint.validators.minBond,
      })
      validatorAddresses.push((clients.account as Account).address)
      const config = join(vdir, 'config.json')
      writeFileSync(
        config,
        JSON.stringify({
          dataDir: '.',
          keyFile: 'key',
          rpcUrl: anvil.rpcUrl,
          blueprint: '../blueprint.json',
          deployment: '../deployment.json',
          // no static peers: validators find each other from the endpoints they advertise on-chain
          peers: [],
          port: await stablePort(),
          leaderTimeoutMs: LEADER_TIMEOUT_MS,
          agreementTimeoutMs: AGREEMENT_TIMEOUT_MS,
          gatewayWaitMs: GATEWAY_WAIT_MS,
          // odd validators check signatures on a worker thread, even ones on their main thread
          ...(i % 2 === 1 ? { parallelJudgeFrom: 1, signatureThreads: 1 } : {}),
        }),
      )
      validatorRoles.push(
        role(`v${i}`, 'validator', ['src/cli/main.ts', 'validator', 'run', '--config', config]),
      )
    }

    await gateway.start()
    await Promise.all(validatorRoles.map((v) => v.start()))

    return {
      dir,
      blueprint,
      anvil,
      admin,
      deployment,
      fleet,
      brokerUrl,
      topicPrefix,
      gateway,
      gatewayUrl,
      gatewayId,
      validators: validatorRoles,
      validatorAddresses,
      roles,
      /** Kills what still runs (roles, broker, chain); call after the orderly stop. */
      stop: stopRest,
    }
  } catch (error) {
    await stopRest()
    throw error
  }
}
export type SoakNetwork = Awaited<ReturnType<typeof startSoakNetwork>>
