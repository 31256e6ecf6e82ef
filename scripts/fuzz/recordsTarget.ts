/**
 * Fuzzing the gateway with a use case of several record kinds: `POST /v1/readings` of a
 * connectivity gateway (blueprints/connectivity.yaml: Beacon and Witness records, single-word
 * fields of bytes32, uint64, int32 and uint32), its registry an in-process lookup. Most inputs are
 * near-valid: genuinely signed records of registered hotspots, then mutated in structure or text,
 * pushed past their fields' types (an int32 of 2^31, a negative uint32, a bytes32 of 2^256, 65
 * bytes of hex), given an unknown kind, or confused in meaning (a Witness's values and signature
 * under the name Beacon, another record's signature, a stranger's or a retired hotspot's key).
 *
 * Every record a 200 answers as accepted must be one signed here, as sent; after the run, every
 * record the gateway's store holds must be too, each once.
 */
import { type Address, bytesToHex, numberToHex } from 'viem'
import { type Blueprint, loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../../src/crypto/keccak.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { openGatewayStore } from '../../src/gateway/gatewayStore.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { recordJsonSchema, type SignedReading, toRecordJson } from '../../src/readings/reading.ts'
import { connectivity } from '../../src/usecases/connectivity/index.ts'
import { offChainDeployment } from '../../test/helpers/offChainDeployment.ts'
import { WRONG_FOR_VALID } from './gatewayTarget.ts'
import { isPlainObject, judgeRefusal, parseAnswer } from './judge.ts'
import { digestSigner, type FuzzKey, fuzzKey, signDigest } from './keys.ts'
import { createMutator, type Json } from './mutate.ts'
import { createRandom } from './random.ts'
import type { Tally } from './tally.ts'
import { createTransport, type Transport } from './transport.ts'

const TARGET = 'gateway-records'
const EPOCH_LENGTH = 30n

export type RecordsFixture = { input(): Promise<void>; finish(): Promise<void>; stop(): Promise<void> }

type RecordsCase = { kind: string; text: string; valid: boolean }

const now = () => BigInt(Math.floor(Date.now() / 1000))

export async function startRecordsFixture(options: {
  seed: number
  tally: Tally
  dir: string
  inProcessShare: number
  sockets: number
  keccak: Keccak256
}): Promise<RecordsFixture> {
  const { tally, keccak } = options
  const random = createRandom(options.seed ^ 0x5eed)
  const mutator = createMutator(random)
  const blueprint: Blueprint = loadBlueprint(
    new URL('../../blueprints/connectivity.yaml', import.meta.url).pathname,
  )
  const kinds = connectivity.recordKinds
  const schema = recordJsonSchema(kinds)
  const genesis = now() - 100n * EPOCH_LENGTH
  const deployment = offChainDeployment(genesis, EPOCH_LENGTH)
  const registryAddress = deployment.contracts.deviceRegistry
  const digest = await createReadingHasher(deployment.chainId, registryAddress, kinds)
  const foreign = await createReadingHasher(1, registryAddress, kinds)

  const key = (label: string) => fuzzKey(keccak, `${options.seed} records ${label}`)
  const hotspots = Array.from({ length: 24 }, (_, i) => key(`hotspot ${i}`))
  const retired = [key('retired')]
  const strangers = [key('stranger 0'), key('stranger 1')]
  const registry = new Map<string, { deviceClass: number; status: 'active' | 'retired' }>()
  for (const k of hotspots) registry.set(k.address.toLowerCase(), { deviceClass: 1, status: 'active' })
  for (const k of retired) registry.set(k.address.toLowerCase(), { deviceClass: 1, status: 'retired' })
  const dbPath = `${options.dir}/gateway-records.db`
  const gateway: Gateway = await createGateway({
    blueprint,
    deployment,
    devices: { getDevice: (d: Address) => registry.get(d.toLowerCase()) },
    database: dbPath,
    signatureThreads: 1,
    operator: digestSigner(key('operator')),
    onError: (event) =>
      tally.flag('serverErrors', TARGET, 'reported by the server', event.code, event.message),
  })
  await gateway.start()
  const http: Transport = createTransport(gateway.url, gateway.server, options.sockets)

  // ---- genuine records ----
  const nextSeq = new Map<string, bigint>()
  /** Every record signed here in this network's domain, as `identity` writes it. */
  const signedHere = new Set<string>()
  const history: SignedReading[] = []
  const identity = (r: SignedReading) =>
    `${r.device.toLowerCase()} ${r.seq} ${r.time} ${r.kind ?? 0} ${r.values.join(',')} ${r.signature.toLowerCase()}`
  const word = () => BigInt(bytesToHex(random.bytes(32)))
  const valuesOf = (kind: number): bigint[] =>
    kind === 0
      ? [868_100n + BigInt(random.int(200)) - 100n, word(), word(), BigInt(27 + random.int(2))]
      : [word(), BigInt(-random.int(15_000)), BigInt(random.int(4_000) - 2_000), 868_100n]
  const sign = (k: FuzzKey, record: Omit<SignedReading, 'signature'>, hasher = digest): SignedReading => ({
    ...record,
    signature: signDigest(k, hasher(record)),
  })
  const genuine = (k = random.pick(hotspots), kind = random.int(2)): SignedReading => {
    const seq = (nextSeq.get(k.address) ?? 0n) + 1n
    nextSeq.set(k.address, seq)
    const record = sign(k, {
      device: k.address,
      seq,
      time: now(),
      values: valuesOf(kind),
      ...(kind > 0 ? { kind } : {}),
    })
    signedHere.add(identity(record))
    if (history.length < 256) history.push(record)
    else history[random.int(history.length)] = record
    return record
  }
  /** A record's wire form, bytes32 values sometimes written as 0x hex (the wire allows both). */
  const wire = (r: SignedReading): Json => {
    const json = toRecordJson(r, kinds) as unknown as { values: string[] }
    if (random.chance(0.3)) {
      const fields = kinds[r.kind ?? 0]?.fields ?? []
      json.values = json.values.map((v, i) => (fields[i]?.type === 'bytes32' ? numberToHex(BigInt(v)) : v))
    }
    return json as unknown as Json
  }
  const body = (records: Json[]) => JSON.stringify({ readings: records })

  function recordsCase(): RecordsCase {
    const choice = random.weighted([
      [30, 'valid'],
      [14, 'structure'],
      [8, 'text'],
      [12, 'past the types'],
      [6, 'unknown kind'],
      [10, 'kind confusion'],
      [8, 'borrowed signature'],
      [6, 'stranger or retired'],
      [3, 'other chain'],
      [3, 'replay'],
    ] as const)
    switch (choice) {
      case 'valid': {
        const k = random.pick(hotspots)
        return {
          kind: choice,
          text: body(Array.from({ length: 1 + random.int(4) }, () => wire(genuine(k)))),
          valid: true,
        }
      }
      case 'structure':
        return {
          kind: choice,
          text: JSON.stringify(mutator.mutateJson({ readings: [wire(genuine())] })),
          valid: false,
        }
      case 'text':
        return { kind: choice, text: mutator.mutateText(body([wire(genuine())])), valid: false }
      case 'past the types': {
        const r = genuine()
        const json = toRecordJson(r, kinds) as unknown as { values: string[] }
        const edges =
          (r.kind ?? 0) === 0
            ? [
                [3, '4294967296'],
                [3, '-1'],
                [1, `${1n << 256n}`],
                [1, `0x${'f'.repeat(65)}`],
                [0, '-1'],
                [0, `${1n << 64n}`],
              ]
            : [
                [1, `${1n << 31n}`],
                [1, `${-(1n << 31n) - 1n}`],
                [2, '2147483648'],
                [0, '-1'],
                [0, `0x${'0'.repeat(66)}`],
                [3, `${1n << 64n}`],
              ]
        const [at, value] = random.pick(edges) as [number, string]
        json.values[at] = value
        return { kind: choice, text: body([json as unknown as Json]), valid: false }
      }
      case 'unknown kind': {
        const json = toRecordJson(genuine(), kinds) as unknown as Record<string, Json>
        json.kind = random.pick([
          'Reading',
          'witness',
          '',
          'Witness ',
          'Beacon\u0000',
          mutator.randomString(),
        ])
        return { kind: choice, text: body([json as Json]), valid: false }
      }
      case 'kind confusion': {
        // a genuine record's values and signature under the other kind's name: hashed as that
        // kind, the signature no longer recovers to the hotspot
        const r = genuine()
        const json = toRecordJson({ ...r, kind: (r.kind ?? 0) === 0 ? 1 : 0 }, kinds)
        return { kind: choice, text: body([json as unknown as Json]), valid: false }
      }
      case 'borrowed signature': {
        const r = genuine()
        const other = random.pick(history)
        return { kind: choice, text: body([wire({ ...r, signature: other.signature })]), valid: false }
      }
      case 'stranger or retired': {
        const k = random.pick([...strangers, ...retired])
        const kind = random.int(2)
        const record = sign(k, {
          device: k.address,
          seq: 1n + BigInt(random.int(1000)),
          time: now(),
          values: valuesOf(kind),
          ...(kind > 0 ? { kind } : {}),
        })
        return { kind: choice, text: body([wire(record)]), valid: false }
      }
      case 'other chain': {
        const k = random.pick(hotspots)
        const kind = random.int(2)
        const seq = (nextSeq.get(k.address) ?? 0n) + 1n
        const record = sign(
          k,
          { device: k.address, seq, time: now(), values: valuesOf(kind), ...(kind > 0 ? { kind } : {}) },
          foreign,
        )
        return { kind: choice, text: body([wire(record)]), valid: false }
      }
      case 'replay':
        return { kind: choice, text: body([wire(random.pick(history))]), valid: false }
    }
  }

  /** The record at `index` of a body as the gateway read it, if it is a record at all. */
  const sentRecord = (text: string, index: number): SignedReading | undefined => {
    const parsed = parseAnswer(text) as { readings?: unknown[] } | undefined
    const entry = Array.isArray(parsed?.readings) ? parsed.readings[index] : undefined
    const record = schema.safeParse(entry)
    return record.success ? record.data : undefined
  }

  async function input(): Promise<void> {
    if (history.length === 0) genuine()
    const kase = recordsCase()
    const answer = await http.send(
      {
        method: 'POST',
        path: '/v1/readings',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(kase.text, 'utf8'),
      },
      random.chance(options.inProcessShare),
    )
    if (answer.type === 'failed') {
      tally.flag('transportErrors', TARGET, kase.kind, kase.text, answer.error)
      return
    }
    const text = answer.body.toString('utf8')
    const parsed = parseAnswer(text)
    if (answer.status !== 200) {
      const code = judgeRefusal(tally, TARGET, kase.kind, kase.text, answer.status, parsed, text)
      tally.note(TARGET, code)
      if (kase.valid && answer.status !== 429) tally.flag('validRefused', TARGET, kase.kind, kase.text, text)
      return
    }
    const results = isPlainObject(parsed) && Array.isArray(parsed.results) ? parsed.results : undefined
    if (!results) {
      tally.flag('untypedRefusals', TARGET, kase.kind, kase.text, `200 without results: ${text}`)
      return
    }
    for (const result of results as { index?: number; status?: string; reason?: string }[]) {
      const sent = typeof result.index === 'number' ? sentRecord(kase.text, result.index) : undefined
      if (result.status === 'accepted') {
        if (!sent || !signedHere.has(identity(sent)))
          tally.flag('acceptedForged', TARGET, kase.kind, kase.text, `accepted: ${JSON.stringify(result)}`)
      } else if (typeof result.reason !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(result.reason)) {
        tally.flag('untypedRefusals', TARGET, kase.kind, kase.text, `verdict without a reason code: ${text}`)
      } else if (kase.valid && WRONG_FOR_VALID.has(result.reason)) {
        tally.flag('validRefused', TARGET, kase.kind, kase.text, JSON.stringify(result))
      }
      tally.note(TARGET, result.status === 'accepted' ? 'accepted' : `rejected ${result.reason}`)
    }
  }

  async function finish(): Promise<void> {
    const store = await openGatewayStore(dbPath)
    try {
      const seen = new Set<string>()
      const last = (now() - genesis) / EPOCH_LENGTH + 1n
      for (let epoch = 0n; epoch <= last; epoch++)
        for (const r of await store.epochReadings(epoch)) {
          const id = identity(r)
          if (!signedHere.has(id))
            tally.flag('acceptedForged', TARGET, 'stored', id, 'stored, never signed here')
          if (seen.has(id)) tally.flag('acceptedForged', TARGET, 'stored', id, 'stored twice')
          seen.add(id)
        }
      tally.note(TARGET, `stored ${seen.size}`)
    } finally {
      await store.close()
    }
  }

  return {
    input,
    finish,
    async stop() {
      http.close()
      await gateway.stop()
    },
  }
}
