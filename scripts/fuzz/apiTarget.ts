/**
 * Fuzzing the read API's query routes (`/v1/aggregate`, `/v1/readings`, `/v1/devices`,
 * `/v1/epochs`, `/v1/rewards/:account`, `/v1/stream`, and the parameterless ones) over loopback
 * HTTP (a share in-process when asked), built over real SQLite stores that hold devices in five
 * cities, a validator, two settled epochs whose readings the API can prove and one whose readings
 * root it cannot (so it must list it as unverifiable, never serve its readings), rewards and a
 * claim. Query strings start near-valid (the stored devices, cells, times, owners) and are then
 * mutated: parameters dropped, repeated, retyped, at numeric edges, oddly encoded.
 *
 * Besides the answers' shapes, every reading served must be one of a settled, provable epoch,
 * with that epoch's readings root.
 */
import { join } from 'node:path'
import { latLngToCell } from 'h3-js'
import { type Address, bytesToHex, type Hex, hexToBytes } from 'viem'
import { type ApiServer, createApiServer } from '../../src/api/createApiServer.ts'
import { type Blueprint, loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../../src/crypto/keccak.ts'
import { createBatchWriter } from '../../src/indexer/createBatchWriter.ts'
import { createIndexerStore, type IndexerStore } from '../../src/indexer/indexerStore.ts'
import { openIndexerDatabase } from '../../src/indexer/openIndexerDatabase.ts'
import type { ProtocolEvent } from '../../src/indexer/readProtocolEvents.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import type { SignedReading } from '../../src/readings/reading.ts'
import { buildReadingsTree } from '../../src/rewards/readingsTree.ts'
import { buildRewardsTreeWith } from '../../src/rewards/rewardsTree.ts'
import {
  type AcceptedReading,
  createValidatorStore,
  type ValidatorStore,
} from '../../src/validator/validatorStore.ts'
import { offChainDeployment } from '../../test/helpers/offChainDeployment.ts'
import { isPlainObject, judgeRefusal, parseAnswer } from './judge.ts'
import { fuzzKey, signDigest } from './keys.ts'
import { createMutator, EDGE_INTEGERS, EDGE_STRINGS } from './mutate.ts'
import { createRandom } from './random.ts'
import type { Tally } from './tally.ts'
import { createTransport, encodeTarget } from './transport.ts'

export type ApiFixture = {
  input(): Promise<void>
  finish(): Promise<void>
  stop(): Promise<void>
}

export type StartApiFixtureOptions = {
  seed: number
  tally: Tally
  dir: string
  inProcessShare: number
  sockets: number
  keccak: Keccak256
}

const EPOCH_LENGTH = 30n
const CITIES: [number, number][] = [
  [52.52, 13.405],
  [48.8566, 2.3522],
  [40.7128, -74.006],
  [35.6762, 139.6503],
  [-33.8688, 151.2093],
]
/** Settled epochs: the first two provable, the last settled with a root the store does not give. */
const EPOCHS = [3n, 4n, 5n]
const UNPROVABLE = 5n

type Pair = [string, string]

/** encodeURIComponent, for strings with lone surrogates too (as U+FFFD, as browsers send them). */
const encodeComponent = (s: string) =>
  encodeURIComponent(
    s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  )

export async function startApiFixture(options: StartApiFixtureOptions): Promise<ApiFixture> {
  const { tally, keccak } = options
  const random = createRandom(options.seed ^ 0x0a91)
  const mutator = createMutator(random)
  const blueprint: Blueprint = loadBlueprint(
    new URL('../../blueprints/environment.yaml', import.meta.url).pathname,
  )
  const genesis = BigInt(Math.floor(Date.now() / 1000)) - 100n * EPOCH_LENGTH
  const deployment = offChainDeployment(genesis, EPOCH_LENGTH)
  const digestOf = await createReadingHasher(deployment.chainId, deployment.contracts.deviceRegistry)
  const key = (label: string) => fuzzKey(keccak, `${options.seed} api ${label}`)
  const classId = blueprint.deviceClasses[0]?.id ?? 1
  const fields = blueprint.deviceClasses[0]?.fields.map((f) => f.name) ?? []

  // ---- the stores ----
  const indexerDb = openIndexerDatabase(join(options.dir, 'indexer.db'))
  const indexer: IndexerStore = createIndexerStore(indexerDb)
  const store: ValidatorStore = createValidatorStore(join(options.dir, 'validator.db'))
  const owners = Array.from({ length: 5 }, (_, i) => key(`owner ${i}`).address)
  const validator = key('validator').address
  const devices = Array.from({ length: 40 }, (_, i) => {
    const [lat, lng] = CITIES[i % CITIES.length] as [number, number]
    const at = { lat: lat + (random.int(1000) - 500) / 10_000, lng: lng + (random.int(1000) - 500) / 10_000 }
    return {
      key: key(`device ${i}`),
      ...at,
      cell: latLngToCell(at.lat, at.lng, 8),
      owner: owners[i % owners.length] as Address,
      deviceClass: i % 10 === 9 ? classId + 1 : classId,
    }
  })
  let logIndex = 0
  const position = (block: bigint) => ({
    block,
    logIndex: logIndex++,
    blockTimestamp: genesis + block,
    txHash: bytesToHex(random.bytes(32)),
  })
  const events: ProtocolEvent[] = [
    ...devices.map(
      (d): ProtocolEvent => ({
        ...position(1n),
        type: 'deviceRegistered',
        device: d.key.address,
        owner: d.owner,
        deviceClass: d.deviceClass,
        h3Cell: BigInt(`0x${d.cell}`),
        maker: '0x0000000000000000000000000000000000000000',
      }),
    ),
    { ...position(2n), type: 'validatorJoined', validator, bond: 10n ** 21n },
    { ...position(2n), type: 'validatorEndpointSet', validator, url: 'http://127.0.0.1:1' },
  ]
  /** The digests the API may serve, with their epoch's readings root. */
  const provable = new Map<Hex, Hex>()
  const cumulative = new Map<string, bigint>()
  for (const epoch of EPOCHS) {
    const accepted: AcceptedReading[] = []
    for (const [i, d] of devices.entries()) {
      if (d.deviceClass !== classId) continue
      for (let n = 0; n < 2; n++) {
        const unsigned = {
          device: d.key.address,
          seq: epoch * 10n + BigInt(n),
          time: genesis + epoch * EPOCH_LENGTH + BigInt(n * 10 + (i % 10)),
          values: [
            BigInt(2000 + random.int(500)),
            BigInt(5000 + random.int(1000)),
            BigInt(random.int(500)),
            BigInt(10_000 + random.int(300)),
          ],
        }
        const digest = digestOf(unsigned)
        const reading: SignedReading = { ...unsigned, signature: signDigest(d.key, digest) }
        accepted.push({ reading, digest: bytesToHex(digest) })
      }
    }
    const tree = buildReadingsTree(
      accepted.map((a) => hexToBytes(a.digest)),
      keccak,
    )
    for (const owner of owners)
      cumulative.set(owner.toLowerCase(), (cumulative.get(owner.toLowerCase()) ?? 0n) + 10n ** 18n)
    const rewards = buildRewardsTreeWith(
      [...cumulative].map(([account, cumulativeAmount]) => ({ account: account as Hex, cumulativeAmount })),
      keccak,
    )
    const readingsRoot = epoch === UNPROVABLE ? bytesToHex(random.bytes(32)) : tree.root
    if (epoch !== UNPROVABLE) for (const a of accepted) provable.set(a.digest, tree.root)
    const report = {
      epoch,
      rulesHash: bytesToHex(random.bytes(32)),
      readingsRoot: tree.root,
      rewardsRoot: rewards.root,
      receiptsRoot: bytesToHex(random.bytes(32)),
      total: 5n * 10n ** 18n,
      accepted: accepted.length,
    }
    store.saveResult(
      {
        epoch,
        report,
        digest: bytesToHex(random.bytes(32)),
        signature: bytesToHex(random.bytes(65)),
        cumulative: new Map(cumulative),
        rejectedByReason: {},
        batchHashes: [],
      },
      [],
      accepted,
    )
    const settledAt = position(10n + epoch)
    events.push(
      {
        ...settledAt,
        type: 'reportAccepted',
        ...report,
        readingsRoot,
        signers: [validator],
        submitter: validator,
      },
      {
        ...position(10n + epoch),
        type: 'epochFunded',
        epoch,
        rewardsRoot: rewards.root,
        minted: report.total,
        fromFees: 0n,
      },
    )
  }
  events.push({
    ...position(20n),
    type: 'claimed',
    account: owners[0] as Address,
    amount: 10n ** 18n,
    cumulativeAmount: 10n ** 18n,
    submitter: owners[0] as Address,
  })
  createBatchWriter(indexerDb)({
    events,
    cursor: { block: 20n, hash: bytesToHex(random.bytes(32)), timestamp: genesis + 20n },
  })

  const api: ApiServer = await createApiServer({ deployment, blueprint, indexer, rewards: store })
  await api.start()
  const http = createTransport(api.url, api.server, options.sockets)

  // ---- near-valid query strings ----
  const epochTime = (epoch: bigint) => genesis + epoch * EPOCH_LENGTH
  const time = () =>
    random.weighted([
      [60, () => (epochTime(random.pick(EPOCHS)) + BigInt(random.int(40) - 5)).toString()],
      [20, () => random.pick(EDGE_INTEGERS)],
      [10, () => String(Math.floor(Date.now() / 1000) + random.int(7200) - 3600)],
      [10, () => random.pick(EDGE_STRINGS)],
    ] as const)()
  const device = () => random.pick(devices)
  const address = (a: Address) =>
    random.pick([a, a.toLowerCase(), `0x${a.slice(2).toUpperCase()}`, a.slice(0, -1), `${a}0`])
  const area = (): Pair[] => {
    const d = device()
    if (random.chance(0.5))
      return [['cell', random.chance(0.9) ? d.cell : latLngToCell(d.lat, d.lng, random.int(16))]]
    const digits = random.int(8)
    return [
      ['lat', d.lat.toFixed(digits)],
      ['lng', d.lng.toFixed(digits)],
    ]
  }
  const optional = (p: number, pair: () => Pair): Pair[] => (random.chance(p) ? [pair()] : [])
  const routes: [number, string, () => Pair[]][] = [
    [
      25,
      '/v1/aggregate',
      () => [
        ['field', random.chance(0.9) ? random.pick(fields) : random.pick(['windSpeed', '', 'TEMPERATURE'])],
        ...area(),
        ...optional(0.6, () => ['ring', String(random.int(4))]),
        ...optional(0.7, () => ['from', time()]),
        ...optional(0.7, () => ['to', time()]),
        ...optional(0.2, () => ['class', String(random.pick([classId, classId + 1, 0]))]),
        ...optional(0.3, () => ['limit', String(random.pick([1, 10, 100, 1000, 10_000]))]),
      ],
    ],
    [
      20,
      '/v1/readings',
      () => [
        ...optional(0.7, () => ['device', address(device().key.address)]),
        ...optional(0.7, () => ['from', time()]),
        ...optional(0.7, () => ['to', time()]),
        ...optional(0.3, () => ['limit', String(random.pick([1, 5, 100, 1000]))]),
      ],
    ],
    [
      12,
      '/v1/devices',
      () => [
        ...optional(0.5, () => ['owner', address(random.pick(owners))]),
        ...optional(0.5, () => ['limit', String(random.int(1002))]),
        ...optional(0.5, () => ['offset', String(random.int(50))]),
      ],
    ],
    [10, '/v1/epochs', () => optional(0.8, () => ['limit', String(random.int(502))])],
    [10, '/v1/rewards/', () => []],
    [
      15,
      '/v1/stream',
      () => [
        ...(random.chance(0.4)
          ? [['device', address(device().key.address)] as Pair]
          : random.chance(0.8)
            ? [...area(), ...optional(0.5, () => ['ring', String(random.int(4))] as Pair)]
            : []),
        ...optional(0.5, () => [
          'since',
          random.pick(['-1', '0', '2', '3', '4', '5', '99', ...EDGE_INTEGERS]),
        ]),
        ...optional(0.2, () => ['class', String(classId)]),
      ],
    ],
    [4, '/v1/status', () => []],
    [4, '/v1/validators', () => []],
  ]

  function mutatePairs(pairs: Pair[]): Pair[] {
    const out = [...pairs]
    const at = random.int(out.length)
    const names = [
      'field',
      'cell',
      'lat',
      'lng',
      'ring',
      'from',
      'to',
      'class',
      'limit',
      'device',
      'owner',
      'offset',
      'since',
    ]
    switch (random.int(9)) {
      case 0:
        out.splice(at, 1) // dropped
        break
      case 1:
        if (out[at]) out.push([out[at][0], random.pick([out[at][1], time(), ''])]) // repeated: an array
        break
      case 2:
        if (out[at]) out[at] = [out[at][0], random.pick(EDGE_STRINGS)]
        break
      case 3:
        if (out[at]) out[at] = [out[at][0], random.pick(EDGE_INTEGERS)]
        break
      case 4:
        if (out[at]) out[at] = [out[at][0], mutator.randomString()]
        break
      case 5:
        out.push([random.pick(names), random.pick([...EDGE_STRINGS, ...EDGE_INTEGERS])]) // added
        break
      case 6:
        if (out[at])
          out[at] = [
            random.pick([
              `${out[at][0]}[]`,
              `${out[at][0]}[0]`,
              out[at][0].toUpperCase(),
              '__proto__',
              'constructor',
              '',
            ]),
            out[at][1],
          ]
        break
      case 7:
        if (out[at])
          out[at] = [
            out[at][0],
            `${out[at][1]}${random.pick(['.5', 'e3', ' ', 'x', '&', '#', '%', '%zz', '+1'])}`,
          ]
        break
      default:
        if (out[at])
          out[at] = [
            out[at][0],
            String(random.pick([0.5, -0, 1e21, -1, 2 ** 53 + 1, Number.MAX_VALUE, 5e-324, 1e-7])),
          ]
    }
    return out
  }

  /** The query string, mostly encoded as browsers do, sometimes raw (so `%zz`, `+` and `&` reach the parser). */
  const queryOf = (pairs: Pair[]) => {
    const raw = random.chance(0.2)
    const enc = (s: string) => (raw ? encodeTarget(s) : encodeComponent(s))
    return pairs
      .map(([k, v]) => (random.chance(0.03) ? enc(k) : `${enc(k)}=${enc(v)}`))
      .join(random.chance(0.05) ? '&&' : '&')
  }

  function apiCase(): { kind: string; path: string; stream: boolean; headers: Record<string, string> } {
    const [, route, paramsOf] = random.weighted(routes.map((r) => [r[0], r] as const))
    let pairs = paramsOf()
    let kind = 'near-valid'
    if (random.chance(0.7)) {
      kind = 'mutated'
      for (let i = 1 + random.int(3); i > 0; i--) pairs = mutatePairs(pairs)
    }
    let path = route
    if (route === '/v1/rewards/') {
      const account = random.weighted([
        [60, () => address(random.pick(owners))],
        [10, () => address(device().key.address)],
        [10, () => random.pick(EDGE_STRINGS)],
        [10, () => mutator.randomString()],
        [10, () => `${random.pick(owners)}${random.pick(['/', '/x', '%2F', '..', '?', '#'])}`],
      ] as const)()
      path = `/v1/rewards/${random.chance(0.8) ? encodeComponent(account) : encodeTarget(account)}`
    }
    if (random.chance(0.04)) {
      kind = 'path'
      path = random.pick([
        `${path}/`,
        `/${path}`,
        path.toUpperCase(),
        `${path}%2F`,
        `${path}/..`,
        `${path}.json`,
        '/v1/nowhere',
        '/v1',
        '/v2/epochs',
      ])
    }
    const query = pairs.length > 0 || random.chance(0.1) ? `?${queryOf(pairs)}` : ''
    const headers: Record<string, string> = {}
    if (route === '/v1/stream' && random.chance(0.2))
      headers['last-event-id'] = random.pick(['3', '-1', '', 'x', ...EDGE_INTEGERS])
    return { kind, path: `${path}${query}`, stream: route === '/v1/stream', headers }
  }

  /** Why a served reading should not have been (undefined when it is a settled, provable one). */
  function servedProblem(served: unknown): string | undefined {
    if (!isPlainObject(served)) return 'a reading that is not an object'
    const root = typeof served.digest === 'string' ? provable.get(served.digest as Hex) : undefined
    if (!root) return `a reading not in a provable settled epoch (epoch ${String(served.epoch)})`
    if (served.readingsRoot !== root) return 'a reading with another readings root'
    return undefined
  }

  async function input() {
    const kase = apiCase()
    const answer = await http.send(
      { method: 'GET', path: kase.path, headers: kase.headers, mayStream: kase.stream },
      random.chance(options.inProcessShare),
    )
    const input = `GET ${kase.path}${Object.keys(kase.headers).length > 0 ? ` ${JSON.stringify(kase.headers)}` : ''}`
    if (answer.type === 'failed') {
      tally.flag('transportErrors', 'api', kase.kind, input, answer.error)
      return
    }
    const text = answer.body.toString('utf8')
    if (answer.status !== 200) {
      tally.note('api', judgeRefusal(tally, 'api', kase.kind, input, answer.status, parseAnswer(text), text))
      return
    }
    if (kase.stream) {
      tally.note(
        'api',
        answer.contentType.startsWith('text/event-stream') ? '200 stream' : '200 stream without event-stream',
      )
      return
    }
    const body = parseAnswer(text)
    if (!isPlainObject(body)) {
      tally.flag('untypedRefusals', 'api', kase.kind, input, `200 that is not a JSON object: ${text}`)
      return
    }
    const readings = Array.isArray(body.readings) ? body.readings : []
    for (const served of readings) {
      const problem = servedProblem(served)
      if (problem) tally.flag('acceptedForged', 'api', kase.kind, input, `served ${problem}`)
    }
    tally.note('api', readings.length > 0 ? '200 with proven readings' : '200')
  }

  return {
    input,
    async finish() {
      const answer = await http.send({ method: 'GET', path: '/v1/status' }, false)
      if (answer.type === 'failed' || answer.status !== 200)
        tally.flag(
          'crashes',
          'api',
          'after the run',
          'GET /v1/status',
          answer.type === 'failed' ? answer.error : answer.status,
        )
    },
    async stop() {
      http.close()
      await api.stop()
      indexer.close()
      store.close()
    },
  }
}
