/**
 * Nobody but a listed gateway can answer for the gateway. Anyone who can publish on the broker
 * (or sits between a device and the gateway over HTTP) can answer a device's request; the device
 * drops a queued reading only on a verdict signed by a gateway on the DeviceRegistry's list
 * (read over RPC from a real anvil) for exactly that request and reading. Forged, unsigned,
 * unlisted and misdirected answers are reported with a code and ignored, the reading stays
 * queued, and the device goes on waiting for the real answer, which delivers it. Real aedes and
 * Mosquitto (MQTT_URL), a real gateway with its SQLite store, a real chain.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { type Address, bytesToHex, type Hex, keccak256 } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { listGateway } from '../../src/chain/listGateway.ts'
import { createDevice, type Device } from '../../src/device/createDevice.ts'
import { createMqttTransport, type MqttTransport } from '../../src/device/createMqttTransport.ts'
import { createVerdictVerifier, type DeviceTransportEvent } from '../../src/device/createVerdictVerifier.ts'
import { type GatewayList, openGatewayList } from '../../src/device/openGatewayList.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { createMqttIngest, type MqttIngest } from '../../src/gateway/createMqttIngest.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/network/startEmbeddedBroker.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { createVerdictHasher } from '../../src/readings/createVerdictHasher.ts'
import type { GatewayVerdict } from '../../src/readings/gatewayVerdict.ts'
import { type SignedReading, signedReadingJsonSchema, toReadingJson } from '../../src/readings/reading.ts'
import { signGatewayVerdict } from '../../src/readings/signGatewayVerdict.ts'
import { storedReadingCount } from '../helpers/storedReadingCount.ts'
import { waitFor } from '../helpers/testBlueprint.ts'
import { testDatabase } from '../helpers/testDatabase.ts'
import { startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

const blueprint = loadBlueprint('blueprints/environment.yaml')
const values = [2150n, 5520n, 123n, 10132n]
/** The devices the gateway knows (its indexer's view of the registry, in-process here). */
const registered = new Map<string, { deviceClass: number; status: 'active' | 'retired' }>()
const devices = { getDevice: (d: Address) => registered.get(d.toLowerCase()) }

let net: TestNetwork
let dir: string
let database: string
let now: bigint
/** The gateway operator's key: listed on the registry, it signs the gateway's verdicts. */
const operator = privateKeyToAccount(generatePrivateKey())
/** Someone who can publish on the broker, or answer in the middle, with a key of its own. */
const attacker = privateKeyToAccount(generatePrivateKey())
let gateway: Gateway
let embedded: EmbeddedBroker
let hashReading: Awaited<ReturnType<typeof createReadingHasher>>
let hashVerdict: Awaited<ReturnType<typeof createVerdictHasher>>

beforeAll(async () => {
  net = await startTestNetwork()
  dir = mkdtempSync(join(tmpdir(), 'depin-signed-verdicts-'))
  database = testDatabase(dir, 'gateway')
  now = net.deployment.genesisTime + 5n
  gateway = await createGateway({
    blueprint,
    deployment: net.deployment,
    devices,
    database,
    clock: () => now,
    signatureThreads: 0,
    operator,
  })
  await gateway.start()
  await listGateway({
    sender: net.admin,
    deployment: net.deployment,
    gateway: operator.address,
    url: gateway.url,
  })
  embedded = await startEmbeddedBroker()
  hashReading = await createReadingHasher(net.chainId, net.deployment.contracts.deviceRegistry)
  hashVerdict = await createVerdictHasher(net.chainId, net.deployment.contracts.deviceRegistry)
}, 60_000)
afterAll(async () => {
  await embedded?.close()
  await gateway?.stop()
  await net?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const storedCount = () => storedReadingCount(database)
/** The registry's gateway list, over RPC from the chain. */
const chainGatewayList = (minRefreshIntervalMs?: number): GatewayList =>
  openGatewayList({
    rpcUrl: net.anvil.rpcUrl,
    deviceRegistry: net.deployment.contracts.deviceRegistry,
    ...(minRefreshIntervalMs === undefined ? {} : { minRefreshIntervalMs }),
  })
const newStation = () => {
  const account = privateKeyToAccount(generatePrivateKey())
  registered.set(account.address.toLowerCase(), { deviceClass: 1, status: 'active' })
  return account
}
/** A device agent of `account`, its queue on disk in `stateDir`. */
const deviceOf = (
  account: PrivateKeyAccount,
  stateDir: string,
  via:
    | { transport: MqttTransport }
    | { gatewayUrl: string; gateways: GatewayList; onEvent: (e: DeviceTransportEvent) => void },
): Device =>
  createDevice({
    account,
    chainId: net.chainId,
    deviceRegistry: net.deployment.contracts.deviceRegistry,
    ...via,
    blueprint,
    deviceClass: 1,
    stateDir,
    clock: () => now,
  })
const queueFile = (stateDir: string, device: Device) =>
  readFileSync(join(stateDir, `${device.address}.queue`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line).seq as string)

/** The readings of a request as it travels, and the hash of its bytes. */
function requestOf(payload: Buffer): { id: string; request: Hex; readings: SignedReading[] } {
  const parsed = JSON.parse(payload.toString('utf8')) as { id: string; readings: unknown[] }
  const readings = parsed.readings.map((r) => signedReadingJsonSchema.parse(r) as SignedReading)
  return { id: parsed.id, request: keccak256(payload), readings }
}
/** A 200 answer accepting every reading of the request, signed by `signer`, claiming to be `claimed`. */
async function forgedAcceptance(payload: Buffer, signer: PrivateKeyAccount, claimed: Address) {
  const { id, request, readings } = requestOf(payload)
  const verdict: GatewayVerdict = {
    request,
    status: 200,
    code: '',
    readings: readings.map((r) => ({
      device: r.device,
      seq: r.seq,
      digest: bytesToHex(hashReading(r)),
      status: 'accepted',
      reason: '',
    })),
  }
  const { signature } = await signGatewayVerdict({ operator: signer, hash: hashVerdict, verdict })
  return {
    id,
    status: 200,
    results: readings.map((_, index) => ({ index, status: 'accepted' })),
    accepted: readings.length,
    rejected: 0,
    request,
    gateway: claimed,
    signature,
  }
}
/** A 400 refusal of the request (which would make a device drop its readings), signed by `signer`, claiming to be the listed gateway. */
async function forgedRefusal(payload: Buffer, signer: PrivateKeyAccount) {
  const { id, request } = requestOf(payload)
  const verdict = { request, status: 400, code: 'BATCH_INVALID', readings: [] }
  return {
    id,
    status: 400,
    error: { code: 'BATCH_INVALID', message: 'refused', details: {} },
    ...(await signGatewayVerdict({ operator: signer, hash: hashVerdict, verdict })),
    gateway: operator.address, // claims to be the listed gateway
  }
}

const brokers: Array<[string, () => string]> = [
  ['the embedded broker (aedes)', () => embedded.url],
  ['Mosquitto', () => process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883'],
]

describe.each(brokers)('MQTT verdicts through %s', (_name, brokerUrl) => {
  let prefix: string
  let clientId: string
  let ingest: MqttIngest | undefined
  let spy: MqttClient
  let events: DeviceTransportEvent[]
  let transports: MqttTransport[]
  let stateDir: string
  /** What the attacker publishes on a device's verdicts topic as soon as it sees its request. */
  let forge: (payload: Buffer) => Promise<Array<string | Buffer>>

  async function startIngest() {
    ingest = createMqttIngest({ gateway, brokerUrl: brokerUrl(), clientId, topicPrefix: prefix })
    await ingest.start()
  }
  async function stopIngest() {
    await ingest?.stop()
    ingest = undefined
  }
  /** A transport checking verdicts against the registry's list read over RPC. */
  function transportOf(timeoutMs: number, gateways: GatewayList = chainGatewayList()) {
    const verifier = createVerdictVerifier({
      chainId: net.chainId,
      deviceRegistry: net.deployment.contracts.deviceRegistry,
      gateways,
    })
    const transport = createMqttTransport({
      brokerUrl: brokerUrl(),
      topicPrefix: prefix,
      timeoutMs,
      verifier,
      onEvent: (event) => events.push(event),
    })
    transports.push(transport)
    return transport
  }
  const ignored = () => events.filter((e) => e.type === 'verdict_ignored').map((e) => e.code)

  beforeEach(async () => {
    prefix = `depin-test-${randomBytes(6).toString('hex')}/v1`
    clientId = `depin-gateway-test-${randomBytes(6).toString('hex')}`
    stateDir = mkdtempSync(join(tmpdir(), 'depin-signed-device-'))
    events = []
    transports = []
    forge = async () => []
    // the gateway's session exists, so what devices publish while its ingest is away waits for it
    await startIngest()
    spy = await mqtt.connectAsync(brokerUrl())
    spy.on('message', (topic, payload) => {
      const replyId = topic.slice(`${prefix}/readings/`.length)
      forge(payload).then(
        (answers) => {
          for (const answer of answers) spy.publish(`${prefix}/verdicts/${replyId}`, answer, { qos: 1 })
        },
        (error: unknown) =>
          events.push({
            type: 'transport_error',
            code: 'MQTT_SUBSCRIBE_FAILED',
            message: String(error),
            source: 'attacker',
          }),
      )
    })
    await spy.subscribeAsync(`${prefix}/readings/+`, { qos: 1 })
  })
  afterEach(async () => {
    for (const transport of transports) await transport.close()
    await spy?.endAsync()
    await stopIngest()
    rmSync(stateDir, { recursive: true, force: true })
  })

  /**
   * Sends `readings` while the gateway's ingest is away, so the attacker's answers come first;
   * once `forgeries` answers were ignored, brings the gateway back, whose signed verdict must end
   * the wait.
   */
  async function sendBeforeTheGateway(device: Device, readings: SignedReading[], forgeries: number) {
    await stopIngest()
    const sent = device.send(readings)
    await waitFor(
      `${forgeries} forged answers to be ignored`,
      () => (ignored().length >= forgeries ? true : undefined),
      20_000,
    )
    await startIngest()
    return sent
  }

  it('acceptance: a forged `accepted` before the gateway answers leaves the reading queued; the real signed verdict delivers it', async () => {
    const station = newStation()
    // the forgery claims to be the listed gateway, signed with another key
    forge = async (payload) => [JSON.stringify(await forgedAcceptance(payload, attacker, operator.address))]
    const before = await storedCount()

    // the gateway is away: the forged acceptance is the only answer, and the device ignores it
    await stopIngest()
    const device = deviceOf(station, stateDir, { transport: transportOf(3_000) })
    const reading = await device.sign({ values })
    const whileAway = await device.send([reading])
    expect(ignored()).toContain('VERDICT_FORGED')
    expect(whileAway).toMatchObject({ accepted: 0, queued: 1 })
    expect(whileAway.outcomes[0]).toMatchObject({
      type: 'queued',
      message: expect.stringContaining('VERDICT_FORGED'),
    })
    expect(queueFile(stateDir, device)).toEqual(['1'])
    expect(await storedCount()).toBe(before)

    // the device sends its queue again (and waits past the attacker, who answers first again);
    // the gateway comes back, stores it, and its signed verdict empties the queue
    const again = deviceOf(station, stateDir, { transport: transportOf(30_000) })
    const forgedBefore = ignored().length
    const delivered = await sendBeforeTheGateway(again, [], forgedBefore + 1)
    expect(delivered).toMatchObject({ accepted: 1, queued: 0 })
    expect(queueFile(stateDir, again)).toEqual([])
    expect(await storedCount()).toBe(before + 1)
  })

  it('ignores a verdict signed by an unlisted key, reading the list again at most once however many come', async () => {
    const station = newStation()
    const gateways = chainGatewayList(60_000)
    const signers = Array.from({ length: 20 }, () => privateKeyToAccount(generatePrivateKey()))
    // each forgery signed, and named, by a key of its own: none is on the registry's list
    forge = (payload) =>
      Promise.all(
        signers.map(async (signer) =>
          JSON.stringify(await forgedAcceptance(payload, signer, signer.address)),
        ),
      )
    const device = deviceOf(station, stateDir, { transport: transportOf(30_000, gateways) })
    const result = await sendBeforeTheGateway(device, [await device.sign({ values })], signers.length)
    expect(ignored()).toEqual(signers.map(() => 'VERDICT_SIGNER_UNLISTED'))
    expect(result).toMatchObject({ accepted: 1, queued: 0 })
    // one read of the registry's list for twenty unknown signers and the gateway's verdict
    expect(gateways.reads()).toBe(1)
  })

  it("ignores the listed gateway's real verdict on another reading, however it is relabelled", async () => {
    const station = newStation()
    const other = newStation()
    // a genuine signed verdict of the gateway, on another device's reading, taken off the broker
    const otherReading = await deviceOf(other, stateDir, { transport: transportOf(5_000) }).sign({ values })
    const genuine = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const observer = mqtt.connect(brokerUrl())
      observer.on('message', (_topic, payload) => {
        resolve(JSON.parse(payload.toString()))
        observer.end()
      })
      observer.on('error', reject)
      observer.subscribe(`${prefix}/verdicts/observer`, { qos: 1 }, () =>
        observer.publish(
          `${prefix}/readings/observer`,
          JSON.stringify({ id: 'other', readings: [toReadingJson(otherReading)] }),
          { qos: 1 },
        ),
      )
    })
    expect(genuine).toMatchObject({ status: 200, accepted: 1, gateway: operator.address })
    forge = async (payload) => {
      const { id, request } = requestOf(payload)
      return [
        JSON.stringify({ ...genuine, id }), // as it was signed: for another request
        JSON.stringify({ ...genuine, id, request }), // relabelled: the signature covers other readings
      ]
    }
    const device = deviceOf(station, stateDir, { transport: transportOf(30_000) })
    const result = await sendBeforeTheGateway(device, [await device.sign({ values })], 2)
    expect(ignored().sort()).toEqual(['VERDICT_FORGED', 'VERDICT_MISMATCH'])
    expect(result).toMatchObject({ accepted: 1, queued: 0 })
  })

  it('ignores what is no answer at all on its verdicts topic (null, empty, not JSON, no id) and goes on waiting', async () => {
    const station = newStation()
    forge = async (payload) => {
      const { id } = requestOf(payload)
      return [
        'null',
        Buffer.alloc(0),
        'not json',
        '[]',
        '{"id":5}',
        JSON.stringify({ id, status: '200' }),
        '"x"',
      ]
    }
    const device = deviceOf(station, stateDir, { transport: transportOf(30_000) })
    const result = await sendBeforeTheGateway(device, [await device.sign({ values })], 7)
    expect(ignored()).toEqual(Array(7).fill('VERDICT_MALFORMED'))
    expect(result).toMatchObject({ accepted: 1, queued: 0 })
  })
})

describe('HTTP verdicts through something in between', () => {
  type Mode = 'pass' | 'forge' | 'strip' | 'impostor' | 'replay' | 'refuse'
  let proxy: Server
  let proxyUrl: string
  let mode: Mode = 'pass'
  /** A genuine signed answer of the gateway to an earlier request, kept by the man in the middle. */
  let earlier: Record<string, unknown> | undefined

  beforeAll(async () => {
    proxy = createServer(async (req, res) => {
      const payload = await readBody(req)
      res.setHeader('content-type', 'application/json')
      const answer = async (): Promise<unknown> => {
        if (mode === 'forge') return forgedAcceptance(payload, attacker, operator.address)
        if (mode === 'impostor') return forgedAcceptance(payload, attacker, attacker.address)
        if (mode === 'refuse') return forgedRefusal(payload, attacker)
        if (mode === 'replay') return earlier
        // forward to the gateway
        const response = await fetch(`${gateway.url}/v1/readings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
        })
        const body = (await response.json()) as Record<string, unknown>
        res.statusCode = response.status
        earlier ??= body
        if (mode === 'strip') {
          const { gateway: _, signature: __, request: ___, ...unsigned } = body
          return unsigned
        }
        return body
      }
      const body = await answer()
      if (mode === 'refuse') res.statusCode = 400
      res.end(JSON.stringify(body))
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    proxy?.closeAllConnections()
    await new Promise((resolve) => proxy?.close(resolve))
  })

  it('drops a reading only on the listed gateway signed verdict: forged, unsigned, unlisted, replayed or refused answers leave it queued', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'depin-signed-http-'))
    const events: DeviceTransportEvent[] = []
    const device = deviceOf(newStation(), stateDir, {
      gatewayUrl: proxyUrl,
      gateways: chainGatewayList(),
      onEvent: (event) => events.push(event),
    })
    // a genuine verdict on another request, for the replay
    mode = 'pass'
    const first = await device.send([await device.sign({ values })])
    expect(first).toMatchObject({ accepted: 1, queued: 0 })
    const before = await storedCount()

    const reading = await device.sign({ values })
    const cases: Array<[Mode, string]> = [
      ['forge', 'VERDICT_FORGED'],
      ['impostor', 'VERDICT_SIGNER_UNLISTED'],
      ['replay', 'VERDICT_MISMATCH'],
      ['refuse', 'VERDICT_FORGED'],
    ]
    for (const [which, code] of cases) {
      mode = which
      const result = await device.send(which === 'forge' ? [reading] : [])
      expect(result, which).toMatchObject({ accepted: 0, rejected: 0, queued: 1 })
      expect(events.at(-1), which).toMatchObject({ type: 'verdict_ignored', code })
      expect(queueFile(stateDir, device), which).toEqual(['2'])
    }
    expect(await storedCount()).toBe(before) // none of these reached the gateway

    // the gateway stores it, but the answer loses its signature on the way: still queued
    mode = 'strip'
    expect(await device.send([])).toMatchObject({ accepted: 0, queued: 1 })
    expect(events.at(-1)).toMatchObject({ code: 'VERDICT_UNSIGNED' })
    expect(await storedCount()).toBe(before + 1)

    // the gateway's own answer, signed: acknowledged (a duplicate now), and the queue is empty
    mode = 'pass'
    expect(await device.send([])).toMatchObject({ accepted: 1, queued: 0 })
    expect(queueFile(stateDir, device)).toEqual([])
    expect(await storedCount()).toBe(before + 1)
    rmSync(stateDir, { recursive: true, force: true })
  })
})

describe('the gateway list a device reads from the registry', () => {
  it('takes a gateway listed after its first read, once it signs a verdict', async () => {
    const newcomer = privateKeyToAccount(generatePrivateKey())
    const gateways = chainGatewayList(0)
    const verifier = createVerdictVerifier({
      chainId: net.chainId,
      deviceRegistry: net.deployment.contracts.deviceRegistry,
      gateways,
    })
    const reading = await (
      await deviceOf(newStation(), mkdtempSync(join(tmpdir(), 'depin-list-')), {
        gatewayUrl: gateway.url,
        gateways,
        onEvent: () => {},
      })
    ).sign({ values })
    const payload = Buffer.from(JSON.stringify({ id: 'x', readings: [toReadingJson(reading)] }))
    const answer = await forgedAcceptance(payload, newcomer, newcomer.address)
    const verify = () =>
      verifier.verify({
        readings: [reading],
        request: answer.request,
        status: 200,
        body: answer,
        source: 'test',
      })
    expect(await verify()).toMatchObject({ type: 'ignored', code: 'VERDICT_SIGNER_UNLISTED' })
    await listGateway({
      sender: net.admin,
      deployment: net.deployment,
      gateway: newcomer.address,
      url: 'http://127.0.0.1:1',
    })
    expect(await verify()).toMatchObject({ type: 'answered', accepted: 1 })
    expect(gateways.reads()).toBe(2)
  })
})

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}
