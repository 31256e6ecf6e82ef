/**
 * A network whose validators are processes of their own (`depin validator run`), on real anvil,
 * with a real gateway, its indexer and a small simulated fleet in this process.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Account } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { networkParametersOf } from '../../src/blueprint/loadBlueprint.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { deployContracts } from '../../src/chain/deployContracts.ts'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { joinAsValidator } from '../../src/chain/joinAsValidator.ts'
import { listGateway } from '../../src/chain/listGateway.ts'
import { loadOrCreateKey } from '../../src/chain/loadOrCreateKey.ts'
import { anvilAccounts, startAnvil } from '../../src/chain/startAnvil.ts'
import { openGatewayList } from '../../src/device/openGatewayList.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { createIndexer } from '../../src/indexer/createIndexer.ts'
import { freePort } from '../../src/network/spawnValidatorProcesses.ts'
import { createFleet } from '../../src/usecases/environment/simulator/createFleet.ts'
import { registerFleet } from '../../src/usecases/environment/simulator/registerFleet.ts'
import { runFleet } from '../../src/usecases/environment/simulator/runFleet.ts'
import { shortEpochBlueprint, waitFor } from './testBlueprint.ts'
import { testDatabase } from './testDatabase.ts'

export type ValidatorProcess = {
  child: ChildProcess
  address: string
  output: string[]
  config: string
  /** Arguments of test/helpers/validatorProcess.ts (a fault, a crash point); none: the real CLI. */
  testArgs: string[]
}

/**
 * How validator `i` misbehaves: `silent` is bonded on-chain but its process is killed as soon
 * as it is spawned (it never signs, never leads); the others are test/helpers/validatorProcess.ts's
 * `--fault`.
 */
export type ValidatorFault = 'silent' | 'wrongRewardsRoot' | 'equivocate'

export type ProcessNetworkOptions = {
  validators: number
  faults?: Record<number, ValidatorFault>
  stations?: number
  /** Gateways on the registry's list (default 1), each with a fleet of its own. */
  gateways?: number
  /** Puts something in front of each gateway (tests of misbehaving gateways): returns the URL to list. */
  wrapGateway?: (url: string) => Promise<string>
}

/** Starts the network; if any step fails, whatever had started is stopped before the error is thrown. */
export async function startProcessNetwork(options: ProcessNetworkOptions) {
  const teardown: (() => unknown)[] = []
  const stopAll = async () => {
    for (const step of teardown.splice(0).reverse()) await step()
  }
  try {
    return await buildProcessNetwork(options, teardown, stopAll)
  } catch (error) {
    await stopAll()
    throw error
  }
}

async function buildProcessNetwork(
  options: ProcessNetworkOptions,
  teardown: (() => unknown)[],
  stopAll: () => Promise<void>,
) {
  const { raw, blueprint } = shortEpochBlueprint()
  const dir = mkdtempSync(join(tmpdir(), 'depin-validators-'))
  teardown.push(() => rmSync(dir, { recursive: true, force: true }))
  const anvil = await startAnvil({ blockTime: 1 })
  teardown.push(() => anvil.stop())
  const admin = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[0] })
  const deployment = await deployContracts({ clients: admin, parameters: networkParametersOf(blueprint) })
  writeDeployment(join(dir, 'deployment.json'), deployment)
  writeFileSync(join(dir, 'blueprint.json'), JSON.stringify(raw))

  const indexer = createIndexer({
    publicClient: admin.publicClient,
    deployment,
    dbPath: join(dir, 'gateway-indexer.db'),
  })
  await indexer.start()
  teardown.push(() => indexer.stop())
  /** Each gateway on the registry's list; the fleet's stations are dealt out among them. */
  const gateways: Gateway[] = []
  // each gateway's operator key: its address is its id on the list, and it signs its verdicts
  const operators = Array.from({ length: options.gateways ?? 1 }, () =>
    privateKeyToAccount(generatePrivateKey()),
  )
  for (let g = 0; g < (options.gateways ?? 1); g++) {
    const operator = operators[g] as (typeof operators)[number]
    const gateway = await createGateway({
      blueprint,
      deployment,
      devices: indexer.store,
      database: testDatabase(dir, `gateway_${g}`),
      operator,
    })
    await gateway.start()
    teardown.push(() => gateway.stop())
    gateways.push(gateway)
    const listedUrl = options.wrapGateway ? await options.wrapGateway(gateway.url) : gateway.url
    await listGateway({
      sender: admin,
      deployment,
      gateway: operator.address,
      url: listedUrl,
    })
  }
  const gateway = gateways[0] as Gateway

  const ports: number[] = []
  for (let i = 0; i < options.validators; i++) ports.push(await freePort())
  const processes: ValidatorProcess[] = []
  teardown.push(() => {
    for (const p of processes)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
  })
  const spawnValidator = (config: string, address: string, testArgs: string[] = []): ValidatorProcess => {
    // the real CLI, or the test harness entry for fault and crash tests
    const entry =
      testArgs.length === 0
        ? ['src/cli/main.ts', 'validator', 'run', '--config', config]
        : ['test/helpers/validatorProcess.ts', '--config', config, ...testArgs]
    const child = spawn(process.execPath, ['--import', 'tsx', ...entry], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const output: string[] = []
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    return { child, address, output, config, testArgs }
  }
  /** Bonds validator `i` (a new key in `v<i>/`) and spawns its process, peered with every port known. */
  const untilStarted = (p: ValidatorProcess) =>
    waitFor(`validator ${p.address} to start`, () =>
      p.output.join('').includes('validator_started') ? true : undefined,
    )
  const launch = async (
    i: number,
    fault?: ValidatorFault,
    { bondAfterStart = false } = {},
  ): Promise<ValidatorProcess> => {
    const port = ports[i] as number
    const keyFile = join(dir, `v${i}`, 'key')
    mkdirSync(join(dir, `v${i}`), { recursive: true })
    const clients = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: loadOrCreateKey(keyFile) })
    const bond = () =>
      joinAsValidator({ sponsor: admin, validator: clients, deployment, bond: blueprint.validators.minBond })
    if (!bondAfterStart) await bond()
    const config = join(dir, `v${i}`, 'config.json')
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
        port,
        leaderTimeoutMs: 3_000,
        // odd validators check signatures on worker threads, even ones on their main thread:
        // both paths judge every epoch, and must agree bit for bit
        ...(i % 2 === 1 ? { parallelJudgeFrom: 1, signatureThreads: 2 } : {}),
      }),
    )
    const spawned = spawnValidator(
      config,
      (clients.account as Account).address,
      fault && fault !== 'silent' ? ['--fault', fault] : [],
    )
    if (bondAfterStart) {
      await untilStarted(spawned)
      await bond()
    }
    if (fault === 'silent') {
      const exited = new Promise((resolve) => spawned.child.once('exit', resolve))
      spawned.child.kill('SIGKILL')
      await exited
    }
    return spawned
  }
  for (const i of ports.keys()) processes.push(await launch(i, options.faults?.[i]))
  for (const [i, p] of processes.entries()) if (options.faults?.[i] !== 'silent') await untilStarted(p)

  // one fleet per gateway (seeds 3, 4, …: other keys), the stations shared out
  const fleets = gateways.map((_, g) =>
    createFleet({ size: Math.ceil((options.stations ?? 8) / gateways.length), blueprint, seed: 3 + g }),
  )
  const owners = [await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[1] })]
  for (const fleet of fleets) await registerFleet({ fleet, ownerClients: owners, deployment })
  await indexer.syncOnce()
  const fleetRuns = gateways.map((g, i) =>
    runFleet({
      fleet: fleets[i] as (typeof fleets)[number],
      gatewayUrl: g.url,
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      intervalSeconds: 2,
      // the fleet believes the verdicts its gateway signs (the listed operators)
      gateways: openGatewayList({ addresses: operators.map((o) => o.address) }),
    }),
  )
  for (const run of fleetRuns) teardown.push(() => run.stop())

  return {
    blueprint,
    anvil,
    admin,
    deployment,
    gateway,
    gateways,
    indexer,
    ports,
    processes,
    /**
     * Starts validator `i` again (same key, store and config) and waits until it runs; `testArgs`
     * (e.g. `['--crash-at', 'signed']`) run it through test/helpers/validatorProcess.ts.
     */
    async restart(i: number, testArgs?: string[]) {
      const old = processes[i] as ValidatorProcess
      const fresh = spawnValidator(old.config, old.address, testArgs ?? old.testArgs)
      processes[i] = fresh
      await untilStarted(fresh)
    },
    /**
     * A new validator joins while the network runs: bonded on-chain, then its process started
     * (or, with bondAfterStart, started first and bonded once it runs); it advertises its
     * endpoint and finds the others' on-chain. Returns its index.
     */
    async addValidator(options: { bondAfterStart?: boolean } = {}): Promise<number> {
      ports.push(await freePort())
      const i = ports.length - 1
      const added = await launch(i, undefined, options)
      processes.push(added)
      await untilStarted(added)
      return i
    },
    addresses: () => new Set(processes.map((p) => p.address.toLowerCase())),
    /** Stops everything: fleets, validator processes (SIGKILL), gateways, indexer, chain; removes the files. */
    stop: stopAll,
  }
}
export type ProcessNetwork = Awaited<ReturnType<typeof buildProcessNetwork>>
