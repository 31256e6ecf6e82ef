/**
 * The device SDK knows use cases only through their record kinds: a connectivity hotspot signs
 * Beacon and Witness records with `createDevice`, sharing one sequence across its kinds, keeps
 * them in its durable offline queue with their kinds while the gateway is away (across a restart
 * of the device), and delivers them to a real gateway of the connectivity blueprint, believing
 * only the listed gateway's signed verdict. A real chain (the registry's gateway list over RPC),
 * a real gateway with its SQLite store.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Address } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { listGateway } from '../../src/chain/listGateway.ts'
import { createDevice, type Device } from '../../src/device/createDevice.ts'
import { openGatewayList } from '../../src/device/openGatewayList.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { openGatewayStore } from '../../src/gateway/gatewayStore.ts'
import { beaconValues } from '../../src/usecases/connectivity/index.ts'
import { testDatabase } from '../helpers/testDatabase.ts'
import { startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

const blueprint = loadBlueprint('blueprints/connectivity.yaml')
const registered = new Map<string, { deviceClass: number; status: 'active' | 'retired' }>()
const devices = { getDevice: (d: Address) => registered.get(d.toLowerCase()) }

let net: TestNetwork
let dir: string
let database: string
let now: bigint
const operator = privateKeyToAccount(generatePrivateKey())
let gateway: Gateway | undefined

/** The connectivity gateway on `port` (0: any), its store `database`, kept across restarts. */
const startGateway = async (port = 0) => {
  gateway = await createGateway({
    blueprint,
    deployment: net.deployment,
    devices,
    database,
    clock: () => now,
    signatureThreads: 0,
    operator,
    port,
  })
  await gateway.start()
  return gateway
}

beforeAll(async () => {
  net = await startTestNetwork()
  dir = mkdtempSync(join(tmpdir(), 'depin-record-kinds-'))
  database = testDatabase(dir, 'gateway')
  now = net.deployment.genesisTime + 5n
  const started = await startGateway()
  await listGateway({
    sender: net.admin,
    deployment: net.deployment,
    gateway: operator.address,
    url: started.url,
  })
}, 60_000)
afterAll(async () => {
  await gateway?.stop()
  await net?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const hotspotAgent = (account: PrivateKeyAccount, gatewayUrl: string, stateDir: string): Device =>
  createDevice({
    account,
    chainId: net.chainId,
    deviceRegistry: net.deployment.contracts.deviceRegistry,
    gatewayUrl,
    gateways: openGatewayList({
      rpcUrl: net.anvil.rpcUrl,
      deviceRegistry: net.deployment.contracts.deviceRegistry,
    }),
    blueprint, // its use case's kinds: Beacon, Witness
    deviceClass: 1,
    stateDir,
    clock: () => now,
    timeoutMs: 3_000,
  })

/** (kind, seq) of each record the gateway stored for a device. */
async function stored(device: Address): Promise<string[]> {
  const store = await openGatewayStore(database)
  try {
    return (await store.epochReadings(0n))
      .filter((r) => r.device.toLowerCase() === device.toLowerCase())
      .map((r) => `${r.kind ?? 0}:${r.seq}`)
  } finally {
    await store.close()
  }
}

describe('the device SDK with a use case of several record kinds', () => {
  it('signs Beacon and Witness records, queues them with their kinds while the gateway is away, and delivers them', async () => {
    const hotspot = privateKeyToAccount(generatePrivateKey())
    registered.set(hotspot.address.toLowerCase(), { deviceClass: 1, status: 'active' })
    const stateDir = join(dir, 'hotspot')
    const url = (gateway as Gateway).url

    // the gateway is away: both records wait in the queue, each with its kind
    await gateway?.stop()
    const agent = hotspotAgent(hotspot, url, stateDir)
    const beacon = await agent.signRecord({
      kind: 'Beacon',
      values: beaconValues(`0x${'11'.repeat(32)}${'22'.repeat(32)}1b`, 868_100n),
    })
    const witness = await agent.signRecord({
      kind: 'Witness',
      values: [0xabcdefn, -11_000n, 500n, 868_100n],
      time: now + 1n,
    })
    expect([beacon.seq, beacon.kind ?? 0, witness.seq, witness.kind]).toEqual([1n, 0, 2n, 1])
    const away = await agent.send([beacon, witness])
    expect(away).toMatchObject({ accepted: 0, queued: 2 })
    const lines = readFileSync(join(stateDir, `${hotspot.address}.queue`), 'utf8')
      .split('\n')
      .filter(Boolean)
    expect(lines.map((line) => JSON.parse(line).kind)).toEqual([undefined, 'Witness'])

    // a reading of fields makes no sense for a hotspot: a clear error, and no number is used
    await expect(agent.sign({ values: [1n] })).rejects.toMatchObject({ code: 'READING_INVALID' })
    await expect(agent.signRecord({ kind: 'Reading', values: [1n] })).rejects.toMatchObject({
      code: 'RECORD_KIND_UNKNOWN',
    })
    await expect(agent.signRecord({ kind: 'Witness', values: [1n, 2n] })).rejects.toMatchObject({
      code: 'READING_INVALID',
    })
    expect(agent.lastSeq()).toBe(2n)

    // the device restarts (its queue read back with the kinds), the gateway comes back on its port
    const restarted = hotspotAgent(hotspot, url, stateDir)
    expect(restarted.queued()).toBe(2)
    expect(restarted.lastSeq()).toBe(2n)
    await startGateway(Number(new URL(url).port))
    const delivered = await restarted.send([])
    expect(delivered).toMatchObject({ accepted: 2, rejected: 0, queued: 0 })
    expect(await stored(hotspot.address)).toEqual(['0:1', '1:2'])
  })
})
