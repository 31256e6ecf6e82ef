/**
 * Readings over MQTT, through two real brokers: the embedded aedes that `depin up` starts, and
 * the machine's Mosquitto (MQTT_URL, default mqtt://127.0.0.1:1883; `.ci/run` starts it when it
 * is down). The gateway answers each request only once its readings are durable in SQLite,
 * signed with its operator key over the request's bytes; bad messages get a typed error and
 * change nothing; a store that fails is reported with a code and answered 503; and requests
 * published while the gateway is down are delivered when it returns (its session is kept by the
 * broker). What devices make of forged answers: test/device/signedVerdicts.test.ts.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { type Address, hashTypedData, keccak256, recoverAddress, toBytes } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type Blueprint, loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { createDevice } from '../../src/device/createDevice.ts'
import { createMqttTransport, type MqttTransport } from '../../src/device/createMqttTransport.ts'
import { createVerdictVerifier } from '../../src/device/createVerdictVerifier.ts'
import { openGatewayList } from '../../src/device/openGatewayList.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import {
  createMqttIngest,
  type MqttIngest,
  type MqttIngestErrorEvent,
} from '../../src/gateway/createMqttIngest.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/network/startEmbeddedBroker.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { gatewayVerdictTypedData } from '../../src/readings/gatewayVerdict.ts'
import { toReadingJson } from '../../src/readings/reading.ts'
import { signReading } from '../../src/readings/signReading.ts'
import { offChainDeployment } from '../helpers/offChainDeployment.ts'
import { scrapeMetrics } from '../helpers/scrapeMetrics.ts'
import { storedReadingCount } from '../helpers/storedReadingCount.ts'
import { waitFor } from '../helpers/testBlueprint.ts'
import { testDatabase } from '../helpers/testDatabase.ts'

const blueprint: Blueprint = loadBlueprint('blueprints/environment.yaml')
const GENESIS = 1_800_000_000n
const deployment = offChainDeployment(GENESIS, 30n)
const registry = new Map<string, { deviceClass: number; status: 'active' | 'retired' }>()
const devices = { getDevice: (d: Address) => registry.get(d.toLowerCase()) }
/** The gateway operator's key: it signs the verdicts, and the devices here believe it. */
const operator = privateKeyToAccount(generatePrivateKey())
const verifier = createVerdictVerifier({
  chainId: deployment.chainId,
  deviceRegistry: deployment.contracts.deviceRegistry,
  gateways: openGatewayList({ addresses: [operator.address] }),
})

/** A gateway over the in-process registry, its store `database`, its clock stopped at `now`. */
const createTestGateway = (database: string, now: bigint) =>
  createGateway({
    blueprint,
    deployment,
    devices,
    database,
    clock: () => now,
    signatureThreads: 0,
    operator,
  })

let embedded: EmbeddedBroker
beforeAll(async () => {
  embedded = await startEmbeddedBroker()
})
afterAll(async () => embedded?.close())

const brokers: Array<[string, () => string]> = [
  ['the embedded broker (aedes)', () => embedded.url],
  ['Mosquitto', () => process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883'],
]

describe.each(brokers)('readings over MQTT through %s', (_name, brokerUrl) => {
  let dir: string
  let database: string
  let now: bigint
  let gateway: Gateway
  let ingest: MqttIngest
  let transport: MqttTransport
  // a prefix of its own, so runs sharing a broker never see each other's messages
  let prefix: string
  let clientId: string
  const station = privateKeyToAccount(generatePrivateKey())

  async function startGateway() {
    gateway = await createTestGateway(database, now)
    await gateway.start()
    ingest = createMqttIngest({ gateway, brokerUrl: brokerUrl(), clientId, topicPrefix: prefix })
    await ingest.start()
  }
  async function stopGateway() {
    await ingest.stop()
    await gateway.stop()
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'depin-mqtt-'))
    database = testDatabase(dir, 'gateway')
    now = GENESIS + 10n * 30n + 5n
    prefix = `depin-test-${randomBytes(6).toString('hex')}/v1`
    clientId = `depin-gateway-test-${randomBytes(6).toString('hex')}`
    registry.set(station.address.toLowerCase(), { deviceClass: 1, status: 'active' })
    await startGateway()
    transport = createMqttTransport({
      brokerUrl: brokerUrl(),
      topicPrefix: prefix,
      timeoutMs: 5_000,
      verifier,
    })
  })
  afterEach(async () => {
    await transport.close()
    await stopGateway()
    rmSync(dir, { recursive: true, force: true })
  })

  const sign = (account: PrivateKeyAccount, seq: bigint, values = [2150n, 5520n, 123n, 10132n]) =>
    signReading({
      account,
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      seq,
      time: now,
      values,
    })
  const storedCount = () => storedReadingCount(database)
  /** Publishes a raw payload and returns the gateway's answer on the verdicts topic. */
  async function publishRaw(payload: string | Buffer, replyId = 'raw-sender') {
    const client = await mqtt.connectAsync(brokerUrl())
    try {
      const answer = new Promise<Record<string, unknown>>((resolve) =>
        client.on('message', (_topic, message) => resolve(JSON.parse(message.toString()))),
      )
      await client.subscribeAsync(`${prefix}/verdicts/${replyId}`, { qos: 1 })
      await client.publishAsync(`${prefix}/readings/${replyId}`, payload, { qos: 1 })
      return await answer
    } finally {
      await client.endAsync()
    }
  }

  it('answers a verdict per reading, after the accepted ones are stored', async () => {
    const stranger = privateKeyToAccount(generatePrivateKey())
    const good = [await sign(station, 1n), await sign(station, 2n)]
    const forged = { ...(await sign(stranger, 3n)), device: station.address }
    const answer = await transport.send([...good, forged])
    expect(answer).toMatchObject({ type: 'answered', accepted: 2, rejected: 1 })
    if (answer.type !== 'answered') throw new Error('unreachable')
    expect(answer.results[2]).toMatchObject({ status: 'rejected', reason: 'SIGNATURE_INVALID' })
    expect(await storedCount()).toBe(2)
    expect(ingest.stats()).toEqual({ answered: 1, refused: 0, unanswerable: 0 })
  })

  it("signs each answer with the operator's key, over the request's bytes and each reading", async () => {
    const reading = await sign(station, 1n)
    const payload = JSON.stringify({ id: 'signed-1', readings: [toReadingJson(reading)] })
    const answer = (await publishRaw(payload)) as Record<string, unknown>
    expect(answer).toMatchObject({
      id: 'signed-1',
      status: 200,
      accepted: 1,
      request: keccak256(toBytes(payload)),
      gateway: operator.address,
      signature: expect.stringMatching(/^0x[0-9a-f]{130}$/),
    })
    // checked here with viem's own EIP-712 hashing, from the documented typed data
    const digest = await createReadingHasher(deployment.chainId, deployment.contracts.deviceRegistry)
    const typedData = gatewayVerdictTypedData({
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      verdict: {
        request: keccak256(toBytes(payload)),
        status: 200,
        code: '',
        readings: [
          {
            device: station.address,
            seq: 1n,
            digest: `0x${Buffer.from(digest(reading)).toString('hex')}`,
            status: 'accepted',
            reason: '',
          },
        ],
      },
    })
    const { EIP712Domain: _, ...types } = typedData.types
    const hash = hashTypedData({ ...typedData, types })
    expect(await recoverAddress({ hash, signature: answer.signature as `0x${string}` })).toBe(
      operator.address,
    )

    // a refusal is signed too (it drops the readings of a device), with its code
    const refusal = JSON.stringify({ id: 'signed-2', readings: [] })
    expect(await publishRaw(refusal)).toMatchObject({
      status: 400,
      error: { code: 'BATCH_EMPTY' },
      request: keccak256(toBytes(refusal)),
      gateway: operator.address,
    })
  })

  it('refuses what is not a batch with a typed error and changes nothing', async () => {
    expect(await publishRaw('{"id": "a", "readings": [')).toMatchObject({
      id: null,
      status: 400,
      error: { code: 'INVALID_JSON' },
    })
    expect(await publishRaw(JSON.stringify({ readings: [] }))).toMatchObject({
      status: 400,
      error: { code: 'INVALID_BODY' },
    })
    expect(await publishRaw(JSON.stringify({ id: 'b', readings: 'many' }))).toMatchObject({
      id: 'b',
      status: 400,
      error: { code: 'INVALID_BODY' },
    })
    expect(await publishRaw(JSON.stringify({ id: 'c', readings: [] }))).toMatchObject({
      status: 400,
      error: { code: 'BATCH_EMPTY' },
    })
    expect(await publishRaw(Buffer.alloc(1024 * 1024 + 1, 0x20))).toMatchObject({
      status: 413,
      error: { code: 'BODY_TOO_LARGE' },
    })
    const wrongTypes = { id: 'd', readings: [{ device: 7, seq: 'x', time: null, values: {}, signature: 1 }] }
    const answer = await publishRaw(JSON.stringify(wrongTypes))
    expect(answer).toMatchObject({ id: 'd', status: 200, accepted: 0, rejected: 1 })
    expect(await storedCount()).toBe(0)
    expect(ingest.stats()).toMatchObject({ refused: 5 })
    // each refused message is counted at /metrics, those refused before the gateway's ingest too
    const metrics = await scrapeMetrics(gateway.url)
    const refused = (code: string) =>
      metrics.value('depin_gateway_batches_refused_total', { transport: 'mqtt', code })
    expect(['INVALID_JSON', 'INVALID_BODY', 'BATCH_EMPTY', 'BODY_TOO_LARGE'].map(refused)).toEqual([
      1, 2, 1, 1,
    ])
  })

  it('reports a store that fails with a code, answers 503 (the device keeps its readings) and takes the next message', async () => {
    const errors: MqttIngestErrorEvent[] = []
    const broken = await createTestGateway(
      testDatabase(mkdtempSync(join(tmpdir(), 'depin-mqtt-broken-')), 'gateway'),
      now,
    )
    await broken.stop() // its SQLite store is closed: every write fails
    const brokenIngest = createMqttIngest({
      gateway: broken,
      brokerUrl: brokerUrl(),
      clientId: `${clientId}-broken`,
      topicPrefix: `${prefix}-broken`,
      onError: (event) => errors.push(event),
    })
    await brokenIngest.start()
    const brokenTransport = createMqttTransport({
      brokerUrl: brokerUrl(),
      topicPrefix: `${prefix}-broken`,
      timeoutMs: 5_000,
      verifier,
    })
    try {
      for (const seq of [1n, 2n]) {
        const answer = await brokenTransport.send([await sign(station, seq)])
        expect(answer).toMatchObject({ type: 'unavailable', status: 503 })
      }
      expect(errors.map((e) => e.code)).toEqual(['INGEST_FAILED', 'INGEST_FAILED'])
      // SQLite: "The database connection is not open"; PostgreSQL: "Cannot use a pool after calling end"
      expect(errors[0]?.message).toMatch(/database|pool/i)
      expect(brokenIngest.stats()).toMatchObject({ refused: 2 })
    } finally {
      await brokenTransport.close()
      await brokenIngest.stop()
    }
  })

  it('delivers what a device sent while the gateway was down, once it returns; the device keeps it queued meanwhile', async () => {
    const device = createDevice({
      account: station,
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      transport,
      blueprint,
      deviceClass: 1,
      clock: () => now,
    })
    await stopGateway()
    const reading = await device.sign({ values: [2150n, 5520n, 123n, 10132n] })
    const whileDown = await device.send([reading])
    expect(whileDown).toMatchObject({ accepted: 0, queued: 1 })
    expect(whileDown.outcomes[0]).toMatchObject({ type: 'queued' })
    await startGateway()
    // the broker kept the gateway's session: the request published while it was down arrives
    await waitFor(
      'the gateway to take the queued request',
      async () => ((await storedCount()) === 1 ? true : undefined),
      20_000,
    )
    // the device resends from its queue: the gateway acknowledges the duplicate, stores it once
    const resent = await device.send([])
    expect(resent).toMatchObject({ accepted: 1, queued: 0 })
    expect(await storedCount()).toBe(1)
  })
})

describe('a gateway whose broker goes away', () => {
  it('says so, reconnects when it is back, and takes readings again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'depin-mqtt-restart-'))
    const now = GENESIS + 10n * 30n + 5n
    let broker = await startEmbeddedBroker()
    const port = Number(new URL(broker.url).port)
    const gateway = await createTestGateway(testDatabase(dir, 'gateway'), now)
    const events: string[] = []
    const errors: MqttIngestErrorEvent[] = []
    const ingest = createMqttIngest({
      gateway,
      brokerUrl: broker.url,
      clientId: 'depin-gateway-restart-test',
      onConnection: (event) => events.push(event.type),
      onError: (event) => errors.push(event),
    })
    const station = privateKeyToAccount(generatePrivateKey())
    registry.set(station.address.toLowerCase(), { deviceClass: 1, status: 'active' })
    const transport = createMqttTransport({ brokerUrl: broker.url, timeoutMs: 5_000, verifier })
    try {
      await gateway.start()
      await ingest.start()
      await broker.close()
      await waitFor('the gateway to notice', () => (events.includes('lost') ? true : undefined), 10_000)
      // its failed reconnects are reported, once, with a code (not swallowed)
      await waitFor('the connection error to be reported', () => errors[0], 10_000)
      expect(errors.map((e) => e.code)).toEqual(['MQTT_CONNECTION_ERROR'])
      expect(errors[0]?.message).toMatch(/ECONNREFUSED/)
      broker = await startEmbeddedBroker({ port })
      await waitFor(
        'the gateway to reconnect',
        () => (events.includes('restored') ? true : undefined),
        10_000,
      )
      const reading = await signReading({
        account: station,
        chainId: deployment.chainId,
        deviceRegistry: deployment.contracts.deviceRegistry,
        seq: 1n,
        time: now,
        values: [2150n, 5520n, 123n, 10132n],
      })
      // the new broker knows no session: the gateway subscribed again by itself
      expect(
        await waitFor(
          'an answer through the new broker',
          async () => {
            const answer = await transport.send([reading])
            return answer.type === 'answered' ? answer : undefined
          },
          20_000,
        ),
      ).toMatchObject({ accepted: 1 })
      expect(events).toEqual(['lost', 'restored'])
    } finally {
      await transport.close()
      await ingest.stop()
      await gateway.stop()
      await broker.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
