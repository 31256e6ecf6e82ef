/**
 * A gateway as a process of its own (`depin gateway run`), killed with SIGKILL while stations
 * send to it over HTTP and over MQTT: every reading it acknowledged is in its store after the
 * restart, stored once, and the stations' queues drain into it. Real anvil, real processes,
 * a real broker (the embedded aedes, in the test process, so it outlives the gateway).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { privateKeyToAddress } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { networkParametersOf } from '../../src/blueprint/loadBlueprint.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { deployContracts } from '../../src/chain/deployContracts.ts'
import type { Deployment } from '../../src/chain/deployment.ts'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { listGateway } from '../../src/chain/listGateway.ts'
import { loadOrCreateKey } from '../../src/chain/loadOrCreateKey.ts'
import { anvilAccounts, startAnvil } from '../../src/chain/startAnvil.ts'
import { createDevice, type Device } from '../../src/device/createDevice.ts'
import { createMqttTransport, type MqttTransport } from '../../src/device/createMqttTransport.ts'
import { createVerdictVerifier } from '../../src/device/createVerdictVerifier.ts'
import { type GatewayList, openGatewayList } from '../../src/device/openGatewayList.ts'
import { openGatewayStore } from '../../src/gateway/gatewayStore.ts'
import { freePort } from '../../src/network/spawnValidatorProcesses.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/network/startEmbeddedBroker.ts'
import { createFleet, type Fleet } from '../../src/usecases/environment/simulator/createFleet.ts'
import { registerFleet } from '../../src/usecases/environment/simulator/registerFleet.ts'
import { shortEpochBlueprint, waitFor } from '../helpers/testBlueprint.ts'

const STATIONS = 12
const teardown: (() => unknown)[] = []
let dir: string
let config: string
let deployment: Deployment
let fleet: Fleet
let broker: EmbeddedBroker
let transport: MqttTransport
let gatewayUrl: string
/** The registry's gateway list, read over RPC: the devices believe only its signed verdicts. */
let gateways: GatewayList

type GatewayProcess = { child: ChildProcess; output: string[] }
function spawnGateway(): GatewayProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'gateway', 'run', '--config', config],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const output: string[] = []
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  teardown.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return { child, output }
}
const started = (p: GatewayProcess) =>
  waitFor(
    'the gateway process to start',
    () => {
      const text = p.output.join('')
      if (p.child.exitCode !== null) throw new Error(`the gateway exited: ${text}`)
      return text.includes('"gateway_started"') ? text : undefined
    },
    60_000,
  )
const exited = (p: GatewayProcess) =>
  new Promise<void>((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) resolve()
    else p.child.once('exit', () => resolve())
  })

beforeAll(async () => {
  const { raw, blueprint } = shortEpochBlueprint()
  dir = mkdtempSync(join(tmpdir(), 'depin-gateway-crash-'))
  teardown.push(() => rmSync(dir, { recursive: true, force: true }))
  const anvil = await startAnvil({ blockTime: 1 })
  teardown.push(() => anvil.stop())
  const admin = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[0] })
  deployment = await deployContracts({ clients: admin, parameters: networkParametersOf(blueprint) })
  writeDeployment(join(dir, 'deployment.json'), deployment)
  writeFileSync(join(dir, 'blueprint.json'), JSON.stringify(raw))
  fleet = createFleet({ size: STATIONS, blueprint, seed: 7 })
  const owners = await Promise.all(
    anvilAccounts.slice(1, 3).map((privateKey) => createChainClients({ rpcUrl: anvil.rpcUrl, privateKey })),
  )
  await registerFleet({ fleet, ownerClients: owners, deployment })

  broker = await startEmbeddedBroker()
  teardown.push(() => broker.close())
  const port = await freePort()
  gatewayUrl = `http://127.0.0.1:${port}`
  // the gateway's operator key (mode 0600): listed on the registry, it signs the verdicts
  const operator = privateKeyToAddress(loadOrCreateKey(join(dir, 'gateway', 'key')))
  await listGateway({ sender: admin, deployment, gateway: operator, url: gatewayUrl })
  gateways = openGatewayList({ rpcUrl: anvil.rpcUrl, deviceRegistry: deployment.contracts.deviceRegistry })
  config = join(dir, 'gateway.json')
  writeFileSync(
    config,
    JSON.stringify({
      dataDir: 'gateway',
      rpcUrl: anvil.rpcUrl,
      blueprint: 'blueprint.json',
      deployment: 'deployment.json',
      port,
      mqttUrl: broker.url,
      mqttClientId: 'depin-gateway-crash-test',
      signatureThreads: 0,
      keyFile: 'gateway/key',
    }),
  )
  const verifier = createVerdictVerifier({
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    gateways,
  })
  transport = createMqttTransport({ brokerUrl: broker.url, timeoutMs: 2_000, verifier })
  teardown.push(() => transport.close())
}, 120_000)

afterAll(async () => {
  for (const step of teardown.reverse()) await step()
})

describe('a gateway process killed mid-load', () => {
  it('keeps every reading it acknowledged, over HTTP and MQTT, and takes the queued ones after its restart', async () => {
    let gateway = spawnGateway()
    await started(gateway)
    // half the stations post over HTTP, half publish through the broker
    const devices: Device[] = fleet.stations.map((station, i) =>
      createDevice({
        account: station.account,
        chainId: deployment.chainId,
        deviceRegistry: deployment.contracts.deviceRegistry,
        blueprint: fleet.blueprint,
        deviceClass: fleet.deviceClass.id,
        ...(i % 2 === 0 ? { gatewayUrl, gateways, timeoutMs: 2_000 } : { transport }),
      }),
    )
    const acknowledged = new Map<string, 'http' | 'mqtt'>()
    let queuedWhileDown = 0
    let running = true
    const load = devices.map(async (device, i) => {
      while (running) {
        const values = fleet.readingsAt(BigInt(Math.floor(Date.now() / 1000)))[i]?.values ?? []
        const reading = await device.sign({ values })
        const result = await device.send([reading])
        for (const outcome of result.outcomes) {
          if (outcome.type === 'accepted') {
            acknowledged.set(
              `${outcome.reading.device.toLowerCase()}:${outcome.reading.seq}`,
              i % 2 ? 'mqtt' : 'http',
            )
          }
        }
        queuedWhileDown = Math.max(queuedWhileDown, result.queued)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })

    const countBy = (transportName: 'http' | 'mqtt') =>
      [...acknowledged.values()].filter((t) => t === transportName).length
    await waitFor(
      'readings acknowledged over both transports',
      () => (countBy('http') >= 50 && countBy('mqtt') >= 50 ? true : undefined),
      60_000,
    )
    gateway.child.kill('SIGKILL')
    await exited(gateway)
    const beforeCrash = acknowledged.size
    // the stations keep measuring while it is down: their readings wait in their queues
    await waitFor('stations to queue readings', () => (queuedWhileDown > 0 ? true : undefined), 30_000)

    gateway = spawnGateway()
    await started(gateway)
    await waitFor(
      'more readings acknowledged after the restart',
      () => (acknowledged.size >= beforeCrash + 100 ? true : undefined),
      60_000,
    )
    running = false
    await Promise.all(load)
    // drain what is still queued
    for (const device of devices) {
      await waitFor(
        'the queue to drain',
        async () => ((await device.send([])).queued === 0 ? true : undefined),
        30_000,
      )
    }
    gateway.child.kill('SIGTERM')
    await exited(gateway)
    expect(gateway.output.join('')).toContain('"gateway_stopped"')

    const store = await openGatewayStore(join(dir, 'gateway', 'gateway.db'))
    try {
      const times = [...acknowledged.keys()].length
      expect(times).toBeGreaterThan(beforeCrash)
      const { genesisTime, epochLength } = deployment
      const nowEpoch = (BigInt(Math.floor(Date.now() / 1000)) - genesisTime) / epochLength
      const stored = new Map<string, number>()
      for (let epoch = 0n; epoch <= nowEpoch; epoch++) {
        for (const r of await store.epochReadings(epoch)) {
          const key = `${r.device.toLowerCase()}:${r.seq}`
          stored.set(key, (stored.get(key) ?? 0) + 1)
        }
      }
      const lost = [...acknowledged.keys()].filter((key) => !stored.has(key))
      expect(lost).toEqual([])
      expect([...stored.values()].every((n) => n === 1)).toBe(true)
      expect(await store.readingCount()).toBe(stored.size)
    } finally {
      await store.close()
    }
  })
})
