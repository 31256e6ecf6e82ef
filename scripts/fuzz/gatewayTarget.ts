/**
 * Fuzzing the gateway: `POST /v1/readings` over loopback HTTP (a share in-process through
 * fastify's inject when asked) and the reading topic over MQTT through an in-process aedes
 * broker, against a gateway whose registry is an in-process lookup (no chain needed), its store
 * on tmpfs when there is one. Most inputs are near-valid: genuinely signed readings of
 * registered devices, then mutated in structure, in text, or forged in meaning (another
 * reading's signature, the high-s twin, a stranger's key, another chain's domain, a future
 * time, …).
 *
 * Every reading a 200 answers as accepted is checked against what was sent, by the rules of the
 * protocol: it must be a reading of an active registered device of a known class, signed by that
 * device (low s), stamped within the allowed skew and for an epoch not sealed. After the run,
 * every reading the gateway's SQLite store holds is checked the same way, and stored once.
 */
import Database from 'better-sqlite3'
import mqtt, { type MqttClient } from 'mqtt'
import { type Address, getAddress, type Hex, hashTypedData } from 'viem'
import { type Blueprint, loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { depinDomain, readingTypes } from '../../src/chain/typedData.ts'
import type { Keccak256 } from '../../src/crypto/keccak.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { createMqttIngest, type MqttIngest } from '../../src/gateway/createMqttIngest.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/network/startEmbeddedBroker.ts'
import { createReadingHasher, type ReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { type SignedReading, toReadingJson } from '../../src/readings/reading.ts'
import { DEFAULT_TOPIC_PREFIX, REPLY_ID_PATTERN } from '../../src/readings/readingTopics.ts'
import { offChainDeployment } from '../../test/helpers/offChainDeployment.ts'
import { isPlainObject, judgeRefusal, parseAnswer } from './judge.ts'
import {
  createStrictRecovery,
  digestSigner,
  type FuzzKey,
  fuzzKey,
  malleate,
  type StrictRecovery,
  signDigest,
} from './keys.ts'
import { createMutator, deeplyNested, EDGE_INTEGERS, type Json } from './mutate.ts'
import { createRandom } from './random.ts'
import type { Tally, Target } from './tally.ts'
import { createTransport, type Transport } from './transport.ts'

export type GatewayFixture = {
  /** Generates, sends and judges one input of `POST /v1/readings`. */
  httpInput(): Promise<void>
  /** Generates, publishes and judges one input of the MQTT reading topic. */
  mqttInput(): Promise<void>
  /** Checks what the gateway stored, and that it and the broker are still up. */
  finish(): Promise<void>
  stop(): Promise<void>
}

export type StartGatewayFixtureOptions = {
  seed: number
  tally: Tally
  /** Where the gateway's SQLite file goes. */
  dir: string
  /** Share of HTTP inputs sent in-process (fastify inject) instead of over a socket. */
  inProcessShare: number
  sockets: number
  keccak: Keccak256
}

/** The reasons a genuine, fresh reading can never deserve (the others depend on timing). */
export const WRONG_FOR_VALID = new Set([
  'SCHEMA_INVALID',
  'SCHEMA_MISMATCH',
  'SIGNATURE_INVALID',
  'SIGNATURE_MALLEABLE',
  'SIGNATURE_MALFORMED',
  'DEVICE_UNKNOWN',
  'DEVICE_RETIRED',
])

const BODY_LIMIT = 256 * 1024
const MAX_BATCH = 1_000
const EPOCH_LENGTH = 30n
/** Every this many accepted readings, the digest is also recomputed with viem (an independent EIP-712). */
const VIEM_CROSS_CHECK_EVERY = 64

/** One generated input: the body as sent, and whether it holds only genuine, fresh readings. */
type ReadingsCase = { kind: string; text: string; valid: boolean; contentType?: string }

const now = () => BigInt(Math.floor(Date.now() / 1000))

export async function startGatewayFixture(options: StartGatewayFixtureOptions): Promise<GatewayFixture> {
  const { tally, keccak } = options
  const random = createRandom(options.seed ^ 0x6a7e)
  const mutator = createMutator(random)
  const blueprint: Blueprint = loadBlueprint(
    new URL('../../blueprints/environment.yaml', import.meta.url).pathname,
  )
  const skew = BigInt(blueprint.epochs.maxClockSkewSeconds)
  const sealDelay = BigInt(blueprint.epochs.sealDelaySeconds)
  const genesis = now() - 100n * EPOCH_LENGTH
  const deployment = offChainDeployment(genesis, EPOCH_LENGTH)
  const registryAddress = deployment.contracts.deviceRegistry
  const domain = depinDomain(deployment.chainId, registryAddress)
  const digest = await createReadingHasher(deployment.chainId, registryAddress)
  // the same reading in another chain's domain, and under another verifying contract
  const foreignDigests = [
    await createReadingHasher(1, registryAddress),
    await createReadingHasher(deployment.chainId, deployment.contracts.epochManager),
  ]
  const recover: StrictRecovery = createStrictRecovery(keccak)
  const epochOf = (time: bigint) => (time - genesis) / EPOCH_LENGTH

  // the registry: active devices of the blueprint's class, retired ones, ones of an unknown class
  const classId = blueprint.deviceClasses[0]?.id ?? 1
  const fieldCount = blueprint.deviceClasses[0]?.fields.length ?? 0
  const unknownClass = Math.max(...blueprint.classById.keys()) + 1
  const key = (label: string) => fuzzKey(keccak, `${options.seed} ${label}`)
  const active = Array.from({ length: 48 }, (_, i) => key(`device ${i}`))
  const retired = Array.from({ length: 2 }, (_, i) => key(`retired ${i}`))
  const otherClass = Array.from({ length: 2 }, (_, i) => key(`class ${i}`))
  const strangers = Array.from({ length: 4 }, (_, i) => key(`stranger ${i}`))
  // active devices of their own for readings at the 64-bit edges: one accepted at seq 2^64 − 1
  // leaves its device nothing above it, and every later reading of it a replay
  const edgeDevices = Array.from({ length: 8 }, (_, i) => key(`edge device ${i}`))
  const registry = new Map<string, { deviceClass: number; status: 'active' | 'retired' }>()
  for (const k of [...active, ...edgeDevices])
    registry.set(k.address.toLowerCase(), { deviceClass: classId, status: 'active' })
  for (const k of retired) registry.set(k.address.toLowerCase(), { deviceClass: classId, status: 'retired' })
  for (const k of otherClass)
    registry.set(k.address.toLowerCase(), { deviceClass: unknownClass, status: 'active' })
  const devices = { getDevice: (d: Address) => registry.get(d.toLowerCase()) }

  const onServerError = (target: Target) => (event: { code: string; message: string }) =>
    tally.flag('serverErrors', target, 'reported by the server', event.code, event.message)
  const dbPath = `${options.dir}/gateway.db`
  const gateway: Gateway = await createGateway({
    blueprint,
    deployment,
    devices,
    database: dbPath,
    bodyLimit: BODY_LIMIT,
    maxBatch: MAX_BATCH,
    signatureThreads: 1,
    operator: digestSigner(key('operator')),
    onError: onServerError('gateway-http'),
  })
  await gateway.start()
  const http: Transport = createTransport(gateway.url, gateway.server, options.sockets)

  const broker: EmbeddedBroker = await startEmbeddedBroker()
  const ingest: MqttIngest = createMqttIngest({
    gateway,
    brokerUrl: broker.url,
    clientId: `depin-fuzz-gateway-${options.seed}`,
    bodyLimit: BODY_LIMIT,
    onError: onServerError('gateway-mqtt'),
  })
  await ingest.start()
  const client: MqttClient = await mqtt.connectAsync(broker.url, {
    clientId: `depin-fuzz-device-${options.seed}`,
    clean: true,
    reconnectPeriod: 1_000,
  })
  const verdictsHead = `${DEFAULT_TOPIC_PREFIX}/verdicts/`
  await client.subscribeAsync(`${verdictsHead}+`, { qos: 1 })
  const waiting = new Map<string, (payload: Buffer) => void>()
  client.on('message', (topic, payload) => waiting.get(topic.slice(verdictsHead.length))?.(payload))
  /** The last few payloads published, to tell which one a broken connection followed. */
  const lastPublished: string[] = []
  const onClientClose = () =>
    tally.flag(
      'transportErrors',
      'gateway-mqtt',
      'the connection closed',
      lastPublished.join('\n  then: '),
      'closed',
    )
  client.on('close', onClientClose)

  // ---- genuine readings ----
  const nextSeq = new Map<string, bigint>()
  /** Recent genuine readings, for replays and borrowed signatures. */
  const history: SignedReading[] = []
  const remember = (reading: SignedReading) => {
    if (history.length < 512) history.push(reading)
    else history[random.int(history.length)] = reading
  }
  const realisticValues = () => [
    BigInt(2150 + random.int(400) - 200),
    BigInt(5520 + random.int(1000) - 500),
    BigInt(random.int(2000)),
    BigInt(10132 + random.int(200) - 100),
  ]
  /**
   * Readings signed here in this network's domain, recent ones (a bounded, insertion-ordered set):
   * an accepted reading found here needs no signature recovery to be known genuine.
   */
  const signedHere = new Set<string>()
  const keyOf = (r: {
    device: string
    seq: bigint
    time: bigint
    values: readonly bigint[]
    signature: string
  }) => `${r.device.toLowerCase()} ${r.seq} ${r.time} ${r.values.join(',')} ${r.signature.toLowerCase()}`
  const sign = (k: FuzzKey, reading: Omit<SignedReading, 'signature'>, hasher: ReadingHasher = digest) => {
    const signed = { ...reading, signature: signDigest(k, hasher(reading)) }
    if (hasher === digest) {
      signedHere.add(keyOf(signed))
      if (signedHere.size > 200_000) signedHere.delete(signedHere.values().next().value as string)
    }
    return signed
  }
  const fresh = (k: FuzzKey, overrides: Partial<Omit<SignedReading, 'signature' | 'device'>> = {}) => {
    const device = k.address.toLowerCase()
    const seq =
      (nextSeq.get(device) ?? BigInt(random.int(5))) +
      1n +
      (random.chance(0.1) ? BigInt(random.int(1000)) : 0n)
    nextSeq.set(device, seq)
    const reading = sign(k, { device: k.address, seq, time: now(), values: realisticValues(), ...overrides })
    if (overrides.time === undefined && overrides.values === undefined) remember(reading)
    return reading
  }
  const freshBatch = (n: number) => Array.from({ length: n }, () => fresh(random.pick(active)))
  /** A reading's JSON as a device may send it: decimal strings, or safe JSON numbers. */
  const wire = (reading: SignedReading): Json => {
    const json = toReadingJson(reading) as unknown as Record<string, Json>
    if (random.chance(0.15)) {
      json.seq = Number(reading.seq)
      json.time = Number(reading.time)
    }
    if (random.chance(0.1)) json.signature = (json.signature as string).toUpperCase().replace('0X', '0x')
    if (random.chance(0.1)) json.device = (json.device as string).toLowerCase()
    return json
  }
  const bodyOf = (readings: Json[], extra: Record<string, Json> = {}): Record<string, Json> => ({
    ...extra,
    readings,
  })

  /** Genuinely signed readings that say something false, or say it where they may not. */
  function forged(): Json[] {
    const k = random.pick(active)
    const base = fresh(k)
    const other = history.length > 0 ? random.pick(history) : fresh(random.pick(active))
    const lie = (reading: SignedReading): Json => wire(reading)
    switch (random.int(14)) {
      case 0: // another reading's signature
        return [lie({ ...base, signature: other.signature })]
      case 1: // a field changed after signing
        return [lie({ ...base, seq: base.seq + 1n })]
      case 2:
        return [lie({ ...base, time: base.time - 1n })]
      case 3:
        return [lie({ ...base, values: base.values.map((v, i) => (i === 0 ? v + 1n : v)) })]
      case 4: // signed by one registered device, claimed by another
        return [lie({ ...base, device: random.pick(active.filter((a) => a !== k)).address })]
      case 5: // the high-s twin of a genuine signature
        return [lie({ ...base, signature: malleate(base.signature) })]
      case 6: // a stranger's genuine signature
        return [lie(fresh(random.pick(strangers)))]
      case 7: // a retired device, or one of a class the blueprint does not have
        return [lie(fresh(random.pick(random.chance(0.5) ? retired : otherClass)))]
      case 8: // another network's domain
        return [lie(sign(k, { ...base }, random.pick(foreignDigests)))]
      case 9: // from the future
        return [lie(fresh(k, { time: now() + skew + 30n + BigInt(random.int(1_000_000)) }))]
      case 10: // for a sealed epoch, or before genesis
        return [
          lie(
            fresh(k, {
              time: random.chance(0.5) ? genesis - 1n - BigInt(random.int(1000)) : now() - 10n * EPOCH_LENGTH,
            }),
          ),
        ]
      case 11: // a replay of an older genuine reading (a duplicate at best)
        return [lie(other)]
      case 12: // a replay with a new seq
        return [lie({ ...other, seq: other.seq + 1_000_000n })]
      default: // the wrong number of values, signed
        return [
          lie(
            fresh(k, {
              values: Array.from({ length: random.pick([0, 3, 5, 32]) }, () => BigInt(random.int(100))),
            }),
          ),
        ]
    }
  }

  /** Readings with integers at and beyond the 64-bit edges, signed when the wire can carry them. */
  function edges(): Json[] {
    const k = random.pick(edgeDevices)
    const edge = () => mutator.edgeBigInt()
    const inUint64 = (v: bigint) => v >= 0n && v < 2n ** 64n
    const inInt64 = (v: bigint) => v >= -(2n ** 63n) && v < 2n ** 63n
    const seq = random.chance(0.5) ? edge() : (nextSeq.get(k.address.toLowerCase()) ?? 0n) + 1n
    const time = random.chance(0.5) ? edge() : now()
    const values = realisticValues().map((v) => (random.chance(0.3) ? edge() : v))
    const reading = { device: k.address, seq, time, values }
    const signature =
      inUint64(seq) && inUint64(time) && values.every(inInt64)
        ? signDigest(k, digest(reading))
        : (`0x${'11'.repeat(64)}1b` as Hex)
    const asWire = (v: bigint): Json =>
      random.chance(0.3) ? Number(v) : random.chance(0.1) ? random.pick(EDGE_INTEGERS) : v.toString()
    return [
      { device: k.address, seq: asWire(seq), time: asWire(time), values: values.map(asWire), signature },
    ]
  }

  function readingsCase(): ReadingsCase {
    const kind = random.weighted([
      [12, 'valid'],
      [36, 'mutated'],
      [14, 'forged'],
      [6, 'edges'],
      [7, 'shape'],
      [14, 'text'],
      [6, 'random'],
      [1.5, 'nested'],
      [0.5, 'big'],
      [2, 'content-type'],
    ] as const)
    const extra: Record<string, Json> = random.chance(0.1) ? { id: mutator.randomString() } : {}
    switch (kind) {
      case 'valid':
        return {
          kind,
          text: JSON.stringify(bodyOf(freshBatch(1 + random.int(4)).map(wire), extra)),
          valid: true,
        }
      case 'mutated': {
        let json: Json = bodyOf(freshBatch(1 + random.int(3)).map(wire), extra)
        for (let i = 1 + random.int(3); i > 0; i--) json = mutator.mutateJson(json)
        return { kind, text: JSON.stringify(json) ?? 'null', valid: false }
      }
      case 'forged':
        return {
          kind,
          text: JSON.stringify(bodyOf([...forged(), ...(random.chance(0.3) ? freshBatch(1).map(wire) : [])])),
          valid: false,
        }
      case 'edges':
        return { kind, text: JSON.stringify(bodyOf(edges())), valid: false }
      case 'shape': {
        const one = wire(fresh(random.pick(active)))
        const shapes: Json[] = [
          null,
          [],
          [one],
          'readings',
          42,
          {},
          { readings: {} },
          { readings: one },
          { readings: [] },
          { readings: null },
          { readings: [null] },
          { readings: [[]] },
          { readings: [one, null, 7, 'x', [one]] },
          { Readings: [one] },
          { readings: JSON.stringify([one]) },
          { readings: Array.from({ length: MAX_BATCH + 1 }, () => ({})) },
        ]
        return { kind, text: JSON.stringify(random.pick(shapes)), valid: false }
      }
      case 'text': {
        let text = JSON.stringify(bodyOf(freshBatch(1 + random.int(3)).map(wire), extra))
        for (let i = 1 + random.int(3); i > 0; i--) text = mutator.mutateText(text)
        return { kind, text, valid: false }
      }
      case 'random': {
        const body: Json = random.chance(0.5)
          ? mutator.randomJson()
          : { readings: Array.from({ length: 1 + random.int(4) }, () => mutator.randomJson()) }
        return { kind, text: JSON.stringify(body) ?? 'null', valid: false }
      }
      case 'nested': {
        const depth = 1 + random.int(random.chance(0.5) ? 100 : 60_000)
        const deep = deeplyNested(depth, random.chance(0.5) ? 'array' : 'object')
        const text = random.chance(0.5)
          ? `{"readings":[${deep}]}`
          : random.chance(0.5)
            ? deep
            : `{"readings":${deep}}`
        return { kind, text, valid: false }
      }
      case 'big': {
        if (random.chance(0.4)) {
          // one genuine reading a thousand times: one stored, the rest duplicates or replays
          const reading = wire(fresh(random.pick(active)))
          return {
            kind,
            text: JSON.stringify(bodyOf(Array.from({ length: MAX_BATCH }, () => reading))),
            valid: false,
          }
        }
        const padding = 'x'.repeat(BODY_LIMIT + 1 + random.int(4096))
        return { kind, text: JSON.stringify(bodyOf(freshBatch(1).map(wire), { padding })), valid: false }
      }
      default:
        return {
          kind,
          text: JSON.stringify(bodyOf(freshBatch(1).map(wire))),
          valid: false,
          contentType: random.pick([
            '',
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/json; charset=utf-16',
            'application/json; charset=latin1',
            'APPLICATION/JSON',
            'application/jsonx',
            'application/json, text/plain',
            'multipart/form-data; boundary=x',
            'application/*',
          ]),
        }
    }
  }

  // ---- the oracle: what an accepted reading must be ----
  const INTEGER_TEXT = /^-?\d+$/
  const integerOf = (value: unknown): bigint | undefined =>
    typeof value === 'string' && INTEGER_TEXT.test(value)
      ? BigInt(value)
      : typeof value === 'number' && Number.isSafeInteger(value)
        ? BigInt(value)
        : undefined
  let accepted = 0

  /**
   * Why `item`, a reading the gateway accepted, should not have been (undefined when it holds).
   * `sentAt` is the clock when it was sent: epochs sealed by then (with a margin) are closed to it.
   */
  function readingProblem(item: unknown, sentAt: bigint | undefined): string | undefined {
    if (!isPlainObject(item)) return 'not an object'
    const { device, signature } = item
    const seq = integerOf(item.seq)
    const time = integerOf(item.time)
    if (typeof device !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(device)) return 'device is not an address'
    if (seq === undefined || seq < 0n || seq >= 2n ** 64n) return 'seq is not a uint64'
    if (time === undefined || time < 0n || time >= 2n ** 64n) return 'time is not a uint64'
    if (!Array.isArray(item.values) || item.values.length > 32) return 'values is not a list'
    const values = item.values.map(integerOf)
    if (values.some((v) => v === undefined || v < -(2n ** 63n) || v >= 2n ** 63n))
      return 'a value is not an int64'
    if (typeof signature !== 'string') return 'no signature'
    const record = registry.get(device.toLowerCase())
    if (record?.status !== 'active') return 'not an active registered device'
    if (record.deviceClass !== classId || values.length !== fieldCount) return 'not a reading of its class'
    const reading = { device: device as Address, seq, time, values: values as bigint[] }
    const sampled = ++accepted % VIEM_CROSS_CHECK_EVERY === 0
    if (!sampled && signedHere.has(keyOf({ ...reading, signature }))) return timeProblem(time, sentAt)
    const hash = digest(reading)
    if (sampled) {
      const independent = hashTypedData({
        domain,
        types: readingTypes,
        primaryType: 'Reading',
        message: reading,
      })
      if (independent !== `0x${Buffer.from(hash).toString('hex')}`)
        return 'the fast digest differs from viem’s'
    }
    if (recover(hash, signature, true) !== device.toLowerCase()) return 'not signed by its device'
    return timeProblem(time, sentAt)
  }
  /** Why a reading stamped `time` could not be accepted when sent at `sentAt` (with margins). */
  function timeProblem(time: bigint, sentAt: bigint | undefined): string | undefined {
    if (time < genesis) return 'before genesis'
    if (sentAt !== undefined) {
      if (time > sentAt + skew + 2n) return 'beyond the clock skew'
      if (epochOf(time) <= epochOf(sentAt - sealDelay - 2n) - 1n) return 'for an epoch already sealed'
    }
    return undefined
  }

  /** Judges the gateway's answer (HTTP status and body, or the MQTT answer's) to `kase`. */
  function judgeAnswer(target: Target, kase: ReadingsCase, sentAt: bigint, status: number, text: string) {
    const body = parseAnswer(text)
    if (status !== 200) {
      tally.note(target, judgeRefusal(tally, target, kase.kind, kase.text, status, body, text))
      if (kase.valid && status < 500) tally.flag('validRefused', target, kase.kind, kase.text, text)
      return
    }
    const results = (body as { results?: unknown } | undefined)?.results
    const sent = (parseAnswer(kase.text) as { readings?: unknown } | undefined)?.readings
    if (!Array.isArray(results) || !Array.isArray(sent) || results.length !== sent.length) {
      tally.flag(
        'untypedRefusals',
        target,
        kase.kind,
        kase.text,
        `200 without a verdict per reading: ${text}`,
      )
      return
    }
    for (const result of results as { index?: unknown; status?: unknown; reason?: unknown }[]) {
      const index = typeof result.index === 'number' ? result.index : -1
      if (result.status === 'accepted') {
        const problem = readingProblem(sent[index], sentAt)
        if (problem)
          tally.flag('acceptedForged', target, kase.kind, kase.text, `reading ${index} accepted: ${problem}`)
        else tally.note(target, 'readings accepted')
      } else if (
        result.status === 'rejected' &&
        typeof result.reason === 'string' &&
        /^[A-Z][A-Z_]+$/.test(result.reason)
      ) {
        tally.note(target, `rejected ${result.reason}`)
        if (kase.valid && WRONG_FOR_VALID.has(result.reason))
          tally.flag(
            'validRefused',
            target,
            kase.kind,
            kase.text,
            `reading ${index}: ${JSON.stringify(result)}`,
          )
      } else {
        tally.flag(
          'untypedRefusals',
          target,
          kase.kind,
          kase.text,
          `verdict without a reason code: ${JSON.stringify(result)}`,
        )
      }
    }
    tally.note(target, '200')
  }

  async function httpInput() {
    const kase = readingsCase()
    const sentAt = now()
    const answer = await http.send(
      {
        method: 'POST',
        path: '/v1/readings',
        headers: kase.contentType === '' ? {} : { 'content-type': kase.contentType ?? 'application/json' },
        body: Buffer.from(kase.text, 'utf8'),
      },
      random.chance(options.inProcessShare),
    )
    tally.note('gateway-http', `via ${answer.via}`)
    if (answer.type === 'failed') {
      tally.flag('transportErrors', 'gateway-http', kase.kind, kase.text, answer.error)
      return
    }
    judgeAnswer('gateway-http', kase, sentAt, answer.status, answer.body.toString('utf8'))
  }

  // ---- MQTT ----
  let requestCount = 0
  let unanswerableSent = 0
  const unanswerableAtStart = ingest.stats().unanswerable

  /** Publishes to `…/readings/` (an empty reply id) on a connection of its own, which the broker must close. */
  async function emptyLevelRefused(payload: Buffer, kase: ReadingsCase) {
    const stray = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    const outcome = await Promise.race([
      stray.publishAsync(`${DEFAULT_TOPIC_PREFIX}/readings/`, payload, { qos: 1 }).then(() => 'acknowledged'),
      new Promise<string>((resolve) => stray.once('close', () => resolve('refused'))),
      new Promise<string>((resolve) => setTimeout(() => resolve('no answer'), 10_000).unref()),
    ])
    await stray.endAsync(true)
    if (outcome === 'refused') tally.note('gateway-mqtt', `empty reply id: ${outcome} by the broker`)
    else
      tally.flag(
        'transportErrors',
        'gateway-mqtt',
        kase.kind,
        `topic ${DEFAULT_TOPIC_PREFIX}/readings/`,
        `${outcome}, not refused`,
      )
  }

  async function mqttInput() {
    const mode = random.weighted([
      [88, 'json'],
      [5, 'raw'],
      [4, 'no-reply-id'],
      [3, 'text'],
    ] as const)
    const replyId = `f${(requestCount++).toString(36)}`
    let kase: ReadingsCase
    let payload: Buffer
    if (mode === 'raw') {
      const bytes = random.pick([
        Buffer.alloc(0),
        Buffer.from('null'),
        Buffer.from(random.bytes(1 + random.int(512))),
        Buffer.from([0xff, 0xfe, 0x00]),
        Buffer.from('{"id":"x","readings":[{"device":"0x'),
        Buffer.from('\ufeff{"id":"1","readings":[]}'),
      ])
      kase = { kind: 'raw payload', text: `base64:${bytes.toString('base64')}`, valid: false }
      payload = bytes
    } else {
      const inner = readingsCase()
      let text = inner.text
      if (text.startsWith('{') && inner.kind !== 'big') {
        // a request id, usually a good one, spliced in (the body may be too deep to stringify again)
        const id = random.weighted<Json>([
          [85, `r${requestCount}`],
          [5, ''],
          [3, 'x'.repeat(129)],
          [3, 42],
          [4, mutator.randomString()],
        ])
        text = `{"id":${JSON.stringify(id)}${text === '{}' ? '' : ','}${text.slice(1)}`
      }
      if (mode === 'text') text = mutator.mutateText(text)
      // valid only when it still is, with a good request id (the body's own id, if any, wins)
      const finalId = (parseAnswer(text) as { id?: unknown } | undefined)?.id
      const goodId = typeof finalId === 'string' && finalId.length > 0 && finalId.length <= 128
      kase = {
        ...inner,
        kind: `${inner.kind}${mode === 'text' ? ' + text' : ''}`,
        text,
        valid: inner.valid && mode !== 'text' && goodId,
      }
      payload = Buffer.from(text, 'utf8')
    }
    lastPublished.push(`${kase.kind}: ${kase.text.slice(0, 300)}`)
    if (lastPublished.length > 3) lastPublished.shift()
    if (mode === 'no-reply-id') {
      // a topic the gateway hears but cannot answer on: it must drop it, changing nothing
      const bad = random.pick(['', 'a.b', 'x'.repeat(65), 'ä', 'a b', 'id$', '🙂'])
      if (REPLY_ID_PATTERN.test(bad)) throw new Error(`${bad} is a valid reply id`)
      if (bad === '') {
        // an empty topic level: the embedded broker refuses it, closing the publisher's connection
        await emptyLevelRefused(payload, kase)
        return
      }
      await client.publishAsync(`${DEFAULT_TOPIC_PREFIX}/readings/${bad}`, payload, { qos: 1 })
      unanswerableSent++
      tally.note('gateway-mqtt', 'unanswerable (dropped)')
      return
    }
    const sentAt = now()
    const answered = new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(replyId)
        resolve(undefined)
      }, 30_000)
      waiting.set(replyId, (answer) => {
        clearTimeout(timer)
        waiting.delete(replyId)
        resolve(answer)
      })
    })
    try {
      await client.publishAsync(`${DEFAULT_TOPIC_PREFIX}/readings/${replyId}`, payload, { qos: 1 })
    } catch (error) {
      waiting.get(replyId)?.(Buffer.alloc(0))
      tally.flag('transportErrors', 'gateway-mqtt', kase.kind, kase.text, error)
      return
    }
    const answer = await answered
    if (answer === undefined) {
      tally.flag(
        'transportErrors',
        'gateway-mqtt',
        kase.kind,
        kase.text,
        'no answer on the verdicts topic within 30 s',
      )
      return
    }
    const json = parseAnswer(answer.toString('utf8'))
    const status = isPlainObject(json) && typeof json.status === 'number' ? json.status : 0
    judgeAnswer('gateway-mqtt', kase, sentAt, status, answer.toString('utf8'))
  }

  async function finish() {
    // both transports still answer
    const health = await http.send({ method: 'GET', path: '/v1/health' }, false)
    if (health.type === 'failed' || health.status !== 200)
      tally.flag(
        'crashes',
        'gateway-http',
        'after the run',
        'GET /v1/health',
        health.type === 'failed' ? health.error : health.status,
      )
    const probe = fresh(random.pick(active))
    const replyId = 'final-probe'
    const answered = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000)
      waiting.set(replyId, () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    await client.publishAsync(
      `${DEFAULT_TOPIC_PREFIX}/readings/${replyId}`,
      JSON.stringify({ id: 'final', readings: [toReadingJson(probe)] }),
      { qos: 1 },
    )
    if (!(await answered))
      tally.flag('crashes', 'gateway-mqtt', 'after the run', 'a last valid request', 'no answer')
    const dropped = ingest.stats().unanswerable - unanswerableAtStart
    if (dropped !== unanswerableSent)
      tally.flag(
        'transportErrors',
        'gateway-mqtt',
        'no-reply-id',
        `${unanswerableSent} published`,
        `${dropped} dropped`,
      )

    // every stored reading: a genuine reading of an active device, each (device, seq) once
    const db = new Database(dbPath, { readonly: true })
    const seen = new Set<string>()
    let stored = 0
    for (const row of db
      .prepare('SELECT device, seq, time, reading_values, signature FROM readings')
      .iterate() as Iterable<{
      device: string
      seq: string
      time: number | bigint
      reading_values: string
      signature: string
    }>) {
      stored++
      const item = {
        device: getAddress(row.device),
        seq: BigInt(row.seq).toString(),
        time: String(row.time),
        values: JSON.parse(row.reading_values) as string[],
        signature: row.signature,
      }
      const problem = readingProblem(item, undefined)
      const id = `${row.device} ${BigInt(row.seq)}`
      if (problem) tally.flag('acceptedForged', 'gateway-http', 'stored', item, `stored: ${problem}`)
      else if (seen.has(id))
        tally.flag('acceptedForged', 'gateway-http', 'stored', item, 'stored twice (a replay)')
      seen.add(id)
    }
    db.close()
    tally.note('gateway-http', 'readings stored (both transports)', stored)
  }

  return {
    httpInput,
    mqttInput,
    finish,
    async stop() {
      http.close()
      client.off('close', onClientClose)
      await client.endAsync()
      await ingest.stop()
      await gateway.stop()
      await broker.close()
    },
  }
}
