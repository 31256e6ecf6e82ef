/**
 * Fuzzing the validators' report exchange: `POST /v1/reports`, `POST /v1/batch-sets` and the GET
 * routes, over loopback HTTP (a share in-process when asked), behind an admission gate that knows
 * one real validator key. Items genuinely signed by that key must be kept (or dropped for room,
 * 409, never refused as invalid); items signed by anyone else, or changed after signing, must be
 * refused. The rate limit is set out of reach, so the fuzzer measures parsing, not the limiter
 * (429s are counted apart).
 *
 * Every item the exchange answers as stored or duplicate is checked by the protocol's rules (its
 * digest is its report's, its signature low-s v 27/28 by the one validator), and so is every item
 * its boards serve after the run.
 */
import { type Address, getAddress, type Hex, hexToBytes } from 'viem'
import { hashEpochReport } from '../../src/chain/signEpochReport.ts'
import type { EpochReportJson } from '../../src/chain/typedData.ts'
import type { Keccak256 } from '../../src/crypto/keccak.ts'
import { encodeBatch } from '../../src/gateway/batchFormat.ts'
import { hashBatchSet, MAX_BATCHES_PER_SET } from '../../src/validator/batchSets.ts'
import {
  createHttpReportExchange,
  type HttpReportExchange,
} from '../../src/validator/createHttpReportExchange.ts'
import { createExchangeAdmission } from '../../src/validator/exchangeAdmission.ts'
import { offChainDeployment } from '../../test/helpers/offChainDeployment.ts'
import { errorCodeOf, isPlainObject, judgeRefusal, parseAnswer } from './judge.ts'
import { createStrictRecovery, type FuzzKey, fuzzKey, malleate, signDigest } from './keys.ts'
import { createMutator, deeplyNested, EDGE_INTEGERS, EDGE_STRINGS, type Json } from './mutate.ts'
import { createRandom } from './random.ts'
import type { Tally } from './tally.ts'
import { createTransport, encodeTarget } from './transport.ts'

export type ExchangeFixture = {
  input(): Promise<void>
  /** Checks every item the boards hold, and that the exchange still answers. */
  finish(): Promise<void>
  stop(): Promise<void>
}

export type StartExchangeFixtureOptions = {
  seed: number
  tally: Tally
  inProcessShare: number
  sockets: number
  keccak: Keccak256
}

const EPOCH_LENGTH = 30n
const BEHIND = 16n
const BODY_LIMIT = 64 * 1024
const POOL_SIZE = 400

type ReportJson = {
  epoch: string
  report: EpochReportJson
  digest: Hex
  signer: Address
  signature: Hex
}
type BatchSetJson = { epoch: string; batches: Hex[]; signer: Address; signature: Hex }
type ExchangeCase = { kind: string; path: string; text: string; valid: boolean; contentType?: string }

const now = () => BigInt(Math.floor(Date.now() / 1000))
const WRONG_FOR_VALID = new Set([400, 403])

export async function startExchangeFixture(options: StartExchangeFixtureOptions): Promise<ExchangeFixture> {
  const { tally, keccak } = options
  const random = createRandom(options.seed ^ 0x3c4a)
  const mutator = createMutator(random)
  const recover = createStrictRecovery(keccak)
  const genesis = now() - 100n * EPOCH_LENGTH
  const deployment = offChainDeployment(genesis, EPOCH_LENGTH)
  const { chainId } = deployment
  const epochManager = deployment.contracts.epochManager
  const validator: FuzzKey = fuzzKey(keccak, `${options.seed} validator`)
  const outsider: FuzzKey = fuzzKey(keccak, `${options.seed} outsider`)
  const currentEpoch = () => (now() - genesis) / EPOCH_LENGTH

  const admit = createExchangeAdmission({
    validators: {
      validators: () => [
        { validator: validator.address, status: 'active', bond: 10n ** 21n, joinedAt: genesis },
      ],
      activeValidatorsAt: () => [validator.address.toLowerCase() as Address],
      lastProcessed: () => ({ block: 1n, timestamp: now() }),
    },
    genesisTime: genesis,
    epochLength: EPOCH_LENGTH,
    behind: BEHIND,
  })
  const exchange: HttpReportExchange = createHttpReportExchange({
    chainId,
    epochManager,
    peers: [],
    admit,
    rateLimit: {
      postsPerSecond: 1_000_000_000,
      getsPerSecond: 1_000_000_000,
      batchesPerSecond: 1_000_000_000,
    },
  })
  // something to serve by content address and by epoch
  const served = encodeBatch(keccak, currentEpoch(), [])
  exchange.serveBatches((hash) => (hash === served.hash ? served.bytes : undefined))
  exchange.serveCumulative((epoch) =>
    epoch === currentEpoch() - 1n ? new Map([[validator.address.toLowerCase(), 10n ** 18n]]) : undefined,
  )
  await exchange.start()
  const http = createTransport(exchange.url, exchange.server, options.sockets)

  // ---- genuine items, in pools refreshed as the epoch window moves ----
  const bytes32 = (): Hex => `0x${Buffer.from(random.bytes(32)).toString('hex')}`
  const windowEpoch = () => {
    const current = currentEpoch()
    const epoch = current - BigInt(random.int(Number(BEHIND) + 1)) + (random.chance(0.05) ? 1n : 0n)
    return epoch < 0n ? 0n : epoch
  }
  function genuineReport(key: FuzzKey, epoch = windowEpoch()): ReportJson {
    const report = {
      epoch,
      rulesHash: bytes32(),
      readingsRoot: bytes32(),
      rewardsRoot: bytes32(),
      receiptsRoot: bytes32(),
      total: random.chance(0.1)
        ? mutator.edgeBigInt() ** 4n % 2n ** 256n
        : BigInt(random.int(1_000_000)) * 10n ** 15n,
      accepted: random.chance(0.1) ? 0xffffffff : random.int(100_000),
    }
    const digest = hashEpochReport(chainId, epochManager, report)
    return {
      epoch: epoch.toString(),
      report: { ...report, epoch: epoch.toString(), total: report.total.toString() },
      digest,
      signer: key.address,
      signature: signDigest(key, hexToBytes(digest)),
    }
  }
  function genuineBatchSet(key: FuzzKey, epoch = windowEpoch()): BatchSetJson {
    const batches = [...new Set(Array.from({ length: random.int(5) }, bytes32))].sort()
    const hash = hashBatchSet(chainId, epochManager, epoch, batches)
    return {
      epoch: epoch.toString(),
      batches,
      signer: key.address,
      signature: signDigest(key, hexToBytes(hash)),
    }
  }
  const reports: ReportJson[] = Array.from({ length: POOL_SIZE }, () => genuineReport(validator))
  const batchSets: BatchSetJson[] = Array.from({ length: POOL_SIZE }, () => genuineBatchSet(validator))
  /** A genuine item of the validator: mostly from the pool, now and then a fresh one replacing one. */
  function pooled<T extends { epoch: string }>(pool: T[], make: () => T): T {
    const i = random.int(pool.length)
    // one the window has left (or is about to) is replaced: the pool stays admissible as epochs pass
    const stale = BigInt((pool[i] as T).epoch) + BEHIND <= currentEpoch() + 1n
    if (stale || random.chance(0.05)) pool[i] = make()
    return pool[i] as T
  }

  // ---- the oracle: what a kept item must be ----
  const uint = (value: unknown, bits: bigint): bigint | undefined =>
    typeof value === 'string' && /^\d+$/.test(value) && BigInt(value) < 2n ** bits ? BigInt(value) : undefined
  const hex32 = (value: unknown): Hex | undefined =>
    typeof value === 'string' && /^0x[0-9a-fA-F]{64}$/.test(value) ? (value.toLowerCase() as Hex) : undefined
  const signedByValidator = (hash: Hex, signer: unknown, signature: unknown): string | undefined => {
    if (typeof signer !== 'string' || signer.toLowerCase() !== validator.address.toLowerCase())
      return 'its signer is not the validator'
    if (typeof signature !== 'string' || recover(hexToBytes(hash), signature, false) !== signer.toLowerCase())
      return 'not signed (low s, v 27/28) by its signer'
    return undefined
  }
  function reportProblem(item: unknown): string | undefined {
    if (!isPlainObject(item) || !isPlainObject(item.report)) return 'not a signed report'
    const epoch = uint(item.epoch, 64n)
    const r = item.report
    const report = {
      epoch: uint(r.epoch, 64n),
      rulesHash: hex32(r.rulesHash),
      readingsRoot: hex32(r.readingsRoot),
      rewardsRoot: hex32(r.rewardsRoot),
      receiptsRoot: hex32(r.receiptsRoot),
      total: uint(r.total, 256n),
      accepted:
        typeof r.accepted === 'number' &&
        Number.isInteger(r.accepted) &&
        r.accepted >= 0 &&
        r.accepted < 2 ** 32
          ? r.accepted
          : undefined,
    }
    if (Object.values(report).some((v) => v === undefined) || epoch === undefined)
      return 'a field is malformed'
    if (report.epoch !== epoch) return 'its report is of another epoch'
    const digest = hashEpochReport(chainId, epochManager, report as Parameters<typeof hashEpochReport>[2])
    if (hex32(item.digest) !== digest) return 'its digest is not its report’s'
    return signedByValidator(digest, item.signer, item.signature)
  }
  function batchSetProblem(item: unknown): string | undefined {
    if (!isPlainObject(item)) return 'not a batch set'
    const epoch = uint(item.epoch, 64n)
    if (epoch === undefined || !Array.isArray(item.batches) || item.batches.length > MAX_BATCHES_PER_SET)
      return 'a field is malformed'
    const batches = item.batches.map(hex32)
    if (batches.some((b) => b === undefined)) return 'a batch is not 32 bytes'
    return signedByValidator(
      hashBatchSet(chainId, epochManager, epoch, batches as Hex[]),
      item.signer,
      item.signature,
    )
  }

  // ---- inputs ----
  function forgedReport(): Json {
    const base = pooled(reports, () => genuineReport(validator))
    const other = random.pick(reports)
    switch (random.int(12)) {
      case 0:
        return { ...base, signature: other.signature }
      case 1: // the report changed, its digest and signature kept (the board may hold the original)
        return { ...base, report: { ...base.report, total: (BigInt(base.report.total) + 1n).toString() } }
      case 2:
        return { ...base, report: { ...base.report, readingsRoot: other.report.readingsRoot } }
      case 3: // another epoch, inside and outside
        return { ...base, epoch: other.epoch }
      case 4:
        return { ...base, epoch: other.epoch, report: { ...base.report, epoch: other.epoch } }
      case 5: // the high-s twin; v as 0/1
        return { ...base, signature: malleate(base.signature) }
      case 6:
        return {
          ...base,
          signature: `${base.signature.slice(0, 130)}0${Number.parseInt(base.signature.slice(130), 16) - 27}`,
        }
      case 7: // an outsider's signature, claimed by the validator
        return { ...genuineReport(outsider, BigInt(base.epoch)), signer: validator.address }
      case 8: // the digest of another report
        return { ...base, digest: other.digest }
      case 9: // a batch set's signature on a report
        return { ...base, signature: random.pick(batchSets).signature }
      case 10: // signed for another network
        return {
          ...base,
          signer: getAddress(base.signer.toLowerCase()),
          signature: signDigest(
            validator,
            hexToBytes(
              hashEpochReport(1, epochManager, {
                ...base.report,
                epoch: BigInt(base.epoch),
                total: BigInt(base.report.total),
              }),
            ),
          ),
        }
      default: // an outsider's own report
        return genuineReport(outsider)
    }
  }
  function forgedBatchSet(): Json {
    const base = pooled(batchSets, () => genuineBatchSet(validator))
    const other = random.pick(batchSets)
    switch (random.int(8)) {
      case 0:
        return { ...base, signature: other.signature }
      case 1: // a batch added, or one dropped, after signing
        return { ...base, batches: [...base.batches, bytes32()] }
      case 2:
        return { ...base, batches: base.batches.slice(1) }
      case 3:
        return { ...base, epoch: other.epoch }
      case 4:
        return { ...base, signature: malleate(base.signature) }
      case 5:
        return { ...genuineBatchSet(outsider, BigInt(base.epoch)), signer: validator.address }
      case 6: // the same batch twice
        return base.batches.length > 0
          ? { ...base, batches: [...base.batches, base.batches[0] as Hex] }
          : genuineBatchSet(outsider)
      default:
        return genuineBatchSet(outsider)
    }
  }

  const epochParam = (): string =>
    random.weighted([
      [50, () => windowEpoch().toString()],
      [15, () => random.pick(EDGE_INTEGERS)],
      [15, () => random.pick(EDGE_STRINGS)],
      [10, () => mutator.randomString()],
      [10, () => `${windowEpoch()}${random.pick(['/', '?x=1', '.0', '%00', '/..', '#'])}`],
    ] as const)()

  function exchangeCase(): ExchangeCase {
    const path = random.chance(0.5) ? '/v1/reports' : '/v1/batch-sets'
    const isReport = path === '/v1/reports'
    const genuine = (): Json =>
      (isReport
        ? pooled(reports, () => genuineReport(validator))
        : pooled(batchSets, () => genuineBatchSet(validator))) as unknown as Json
    const kind = random.weighted([
      [12, 'valid'],
      [16, 'get'],
      [34, 'mutated'],
      [16, 'forged'],
      [10, 'text'],
      [5, 'random'],
      [4, 'shape'],
      [1, 'nested'],
      [0.5, 'big'],
      [1.5, 'content-type'],
    ] as const)
    switch (kind) {
      case 'valid':
        return { kind, path, text: JSON.stringify(genuine()), valid: true }
      case 'get': {
        const route = random.pick([
          '/v1/reports/',
          '/v1/batch-sets/',
          '/v1/cumulative/',
          '/v1/batches/by-hash/',
          '/v1/',
          '/v1/reports',
          '/',
        ])
        const param =
          route === '/v1/batches/by-hash/'
            ? random.pick([
                served.hash,
                served.hash.toUpperCase().replace('0X', '0x'),
                bytes32(),
                mutator.randomString(),
                random.pick(EDGE_STRINGS),
              ])
            : epochParam()
        return { kind, path: encodeTarget(`${route}${param}`), text: '', valid: false }
      }
      case 'mutated': {
        let json = genuine()
        for (let i = 1 + random.int(3); i > 0; i--) json = mutator.mutateJson(json)
        return { kind, path, text: JSON.stringify(json) ?? 'null', valid: false }
      }
      case 'forged':
        return {
          kind,
          path,
          text: JSON.stringify(isReport ? forgedReport() : forgedBatchSet()),
          valid: false,
        }
      case 'text': {
        let text = JSON.stringify(genuine())
        for (let i = 1 + random.int(3); i > 0; i--) text = mutator.mutateText(text)
        return { kind, path, text, valid: false }
      }
      case 'random':
        return { kind, path, text: JSON.stringify(mutator.randomJson()) ?? 'null', valid: false }
      case 'shape':
        return {
          kind,
          path,
          text: JSON.stringify(
            random.pick<Json>([null, [], [genuine()], {}, 'report', 0, { report: genuine() }]),
          ),
          valid: false,
        }
      case 'nested':
        return {
          kind,
          path,
          text: deeplyNested(1 + random.int(30_000), random.chance(0.5) ? 'array' : 'object'),
          valid: false,
        }
      case 'big':
        return {
          kind,
          path,
          text: JSON.stringify({
            ...(genuine() as object),
            padding: 'x'.repeat(BODY_LIMIT + random.int(2048)),
          }),
          valid: false,
        }
      default:
        return {
          kind,
          path,
          text: JSON.stringify(genuine()),
          valid: false,
          contentType: random.pick([
            '',
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/json; charset=utf-16',
            'application/jsonx',
          ]),
        }
    }
  }

  async function input() {
    const kase = exchangeCase()
    const get = kase.kind === 'get'
    const answer = await http.send(
      get
        ? { method: 'GET', path: kase.path }
        : {
            method: 'POST',
            path: kase.path,
            headers:
              kase.contentType === '' ? {} : { 'content-type': kase.contentType ?? 'application/json' },
            body: Buffer.from(kase.text, 'utf8'),
          },
      random.chance(options.inProcessShare),
    )
    const input = get ? `GET ${kase.path}` : `POST ${kase.path} ${kase.text}`
    if (answer.type === 'failed') {
      tally.flag('transportErrors', 'exchange', kase.kind, input, answer.error)
      return
    }
    const text = answer.body.toString('utf8')
    const body = parseAnswer(text)
    if (answer.status === 429) tally.note('exchange', '429 (rate limited)')
    if (
      answer.status === 503 &&
      errorCodeOf(body) === 'BUSY' &&
      kase.path.startsWith('/v1/batches/by-hash/')
    ) {
      // by design: a few batches are served at once, the next asker is sent to another peer
      tally.note('exchange', '503 BUSY (batches served at once, counted apart)')
      return
    }
    if (answer.status !== 200) {
      const label = judgeRefusal(tally, 'exchange', kase.kind, input, answer.status, body, text)
      tally.note('exchange', `${get ? 'GET' : 'POST'} ${label}`)
      if (kase.valid && WRONG_FOR_VALID.has(answer.status))
        tally.flag('validRefused', 'exchange', kase.kind, input, text)
      return
    }
    if (get) {
      tally.note('exchange', 'GET 200')
      return
    }
    const result = isPlainObject(body) ? body.result : undefined
    if (result !== 'stored' && result !== 'duplicate') {
      tally.flag(
        'untypedRefusals',
        'exchange',
        kase.kind,
        input,
        `200 that is neither stored nor duplicate: ${text}`,
      )
      return
    }
    tally.note('exchange', `POST 200 ${result}${kase.valid ? '' : ' (not generated as valid)'}`)
    const problem = (kase.path === '/v1/reports' ? reportProblem : batchSetProblem)(parseAnswer(kase.text))
    if (problem) tally.flag('acceptedForged', 'exchange', kase.kind, input, `answered ${result}: ${problem}`)
  }

  async function finish() {
    let held = 0
    const last = currentEpoch() + 2n
    for (let epoch = 0n; epoch <= last; epoch++) {
      for (const [path, field, problemOf] of [
        ['/v1/reports/', 'reports', reportProblem],
        ['/v1/batch-sets/', 'batchSets', batchSetProblem],
      ] as const) {
        const answer = await http.send({ method: 'GET', path: `${path}${epoch}` }, false)
        if (answer.type === 'failed' || answer.status !== 200) {
          tally.flag(
            'crashes',
            'exchange',
            'after the run',
            `GET ${path}${epoch}`,
            answer.type === 'failed' ? answer.error : answer.status,
          )
          return
        }
        const items = (parseAnswer(answer.body.toString('utf8')) as Record<string, unknown> | undefined)?.[
          field
        ]
        for (const item of Array.isArray(items) ? items : []) {
          held++
          const problem = problemOf(item)
          if (problem) tally.flag('acceptedForged', 'exchange', 'held on the board', item, problem)
        }
      }
    }
    tally.note('exchange', 'items held on the boards after the run', held)
  }

  return {
    input,
    finish,
    async stop() {
      http.close()
      await exchange.stop()
    },
  }
}
