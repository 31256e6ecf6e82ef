/**
 * Validators talking to each other over HTTP, between separate processes.
 *
 * In: `POST /v1/reports` — one signed report from a peer (or anyone); `POST /v1/batch-sets` — one
 * signed batch set (the batches a validator holds for an epoch). Out: `GET /v1/reports/:epoch`,
 * `GET /v1/batch-sets/:epoch` — every one held for the epoch; `GET /v1/batches/by-hash/:hash` —
 * a sealed batch this validator holds, by content address; `GET /v1/cumulative/:epoch` — the
 * cumulative rewards it holds after an epoch (checked by the asker against the settled root). Stored: reports and batch sets in
 * memory only, the last `keepEpochs` epochs; batches come from the validator's own store.
 *
 * Validator endpoints are public (advertised on-chain), so everything that arrives is hostile until
 * checked. Before any signature is recovered, `admit` (given by the validator, from its indexer and
 * clock) refuses items of signers that are not validators of the network and of epochs outside a
 * window around the current one: nobody can fill the board with throwaway keys or far-future epochs.
 * Each source IP is rate-limited (@fastify/rate-limit). A report is kept only when it is also
 * self-consistent: its digest is the EIP-712 digest of its report in this chain's EpochManager
 * domain, its epoch is the report's epoch, and its signature (65 bytes, v 27/28, low s as
 * OpenZeppelin's ECDSA requires) recovers to its signer. Two different reports by one signer for
 * one epoch are both kept: that is equivocation evidence.
 *
 * `publish` and `announceBatches` answer which peers refused the item, so a validator knows when
 * its own items were not kept (and says so).
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Address, Hex } from 'viem'
import { z } from 'zod'
import { createJsonServer, serveMetrics } from '../api/createJsonServer.ts'
import { hashEpochReport, recoverReportSigner } from '../chain/signEpochReport.ts'
import { type EpochReport, type EpochReportJson, epochReportToJson } from '../chain/typedData.ts'
import { signatureShapeProblem } from '../crypto/signatureShape.ts'
import { DepinError } from '../errors.ts'
import { createMetrics, type Metrics } from '../protocol/metrics.ts'
import {
  type BatchSetAnnouncement,
  batchSetJsonSchema,
  canonicalBatchList,
  toBatchSetJson,
  verifyBatchSet,
} from './batchSets.ts'
import { readCapped, readCappedBytes } from './readCapped.ts'
import type {
  BatchSource,
  CumulativeSource,
  PeerRefusal,
  PublishOutcome,
  ReportExchange,
  SignedEpochReport,
} from './reportExchange.ts'
import { type BoardKeepResult, createSignedBoard } from './signedBoard.ts'
import { addressHex, bytes32, decimal, signatureHex, UINT64_MAX, UINT256_MAX } from './wireSchemas.ts'

export type CreateHttpReportExchangeOptions = {
  chainId: number
  epochManager: Address
  /** Base URLs of the peer validators' exchanges, e.g. http://127.0.0.1:9101 */
  peers: readonly string[]
  /** More peers, asked for at every use (e.g. the endpoints active validators advertise on-chain). */
  discoverPeers?: () => readonly string[]
  /** This exchange's own advertised URL, never taken for a peer (its listening URL never is either). */
  advertisedUrl?: string
  host?: string
  /** 0 (default) takes a free port. */
  port?: number
  /** Milliseconds per peer request (default 2,000). */
  timeoutMs?: number
  /** Epochs kept in memory (default 64): older ones are dropped. */
  keepEpochs?: number
  /** Milliseconds to fetch one batch from a peer (default 60,000). */
  batchTimeoutMs?: number
  /** Largest batch accepted from a peer, in bytes (default 256 MiB). */
  maxBatchBytes?: number
  /** Called when a peer is down, too slow or answers an error (the peer is skipped). */
  onPeerError?: (event: { peer: string; action: PeerAction; error: unknown }) => void
  /**
   * Whether an item of `signer` for `epoch` may be kept at all, decided before its signature is
   * checked (see `createExchangeAdmission`). Default: everything (tests of the exchange alone).
   */
  admit?: (item: { epoch: bigint; signer: Address }) => Admission
  /** Requests per source IP and second (default 50 POSTs, 600 GETs: a peer with 30 others asks each for two lists 4 times a second while it agrees; bursts up to that many). */
  rateLimit?: { postsPerSecond?: number; getsPerSecond?: number; batchesPerSecond?: number }
  /** Served at GET /metrics, with the peers reachable (default: metrics of its own). */
  metrics?: Metrics
}

/** Whether the exchange may keep an item, before its signature is even looked at. */
export type Admission =
  | { type: 'admitted' }
  | { type: 'refused'; code: 'EPOCH_OUT_OF_WINDOW' | 'SIGNER_NOT_VALIDATOR'; message: string }

/** A list peers serve per epoch: where, under which JSON field, how to parse and check each item. */
type PeerList<T> = { path: string; field: string; schema: z.ZodType<T>; verify: (item: T) => Promise<T> }

/** What this exchange was doing with a peer when it failed. */
export type PeerAction = 'publish' | 'collect' | 'announce' | 'fetchBatch' | 'fetchCumulative'

/** A peer's cumulative rewards: [lower-case account, decimal amount] pairs, each account once. */
const cumulativeJsonSchema = z.object({
  amounts: z
    .array(z.tuple([addressHex.transform((a) => a.toLowerCase()), decimal(UINT256_MAX, 'uint256')]))
    .transform((pairs) => new Map(pairs)),
})

/** Two different reports signed by one validator for one epoch (for EpochManager.proveEquivocation). */
export type ReportEquivocation = { signer: Address; a: SignedEpochReport; b: SignedEpochReport }

export type HttpReportExchange = ReportExchange & {
  start(): Promise<void>
  stop(): Promise<void>
  /** Base URL once started, e.g. http://127.0.0.1:43121 */
  readonly url: string
  readonly server: FastifyInstance
  /** Pairs of different reports by one signer for the epoch, among those held locally. */
  equivocations(epoch: bigint): ReportEquivocation[]
  /**
   * Serves settled epochs' records (src/rewards/epochRecord.ts: their canonical bytes) at
   * `GET /v1/epoch-records/:epoch`, for roles that serve epochs without this validator's store.
   */
  serveEpochRecords(source: (epoch: bigint) => Uint8Array | undefined): void
}

/** The JSON wire form of a signed report: bigints as decimal strings. */
export type SignedEpochReportJson = {
  epoch: string
  report: EpochReportJson
  digest: Hex
  signer: Address
  signature: Hex
}

/** The active set is capped at 31; room for inactive or departing signers, never unbounded. */
const MAX_SIGNERS_PER_EPOCH = 128
/** Batches served at once (each may be large); the next asker gets 503 BUSY and asks another peer. */
const MAX_BATCHES_IN_FLIGHT = 4
/** Two different reports are proof enough of equivocation; more would only take memory. */
const MAX_REPORTS_PER_SIGNER = 2
/** Largest peer answer read (MAX_SIGNERS_PER_EPOCH × MAX_REPORTS_PER_SIGNER reports fit easily). */
const MAX_PEER_RESPONSE_BYTES = 1024 * 1024

/** Parses the JSON wire form of a signed report (shape and ranges only, not the signature). */
export const signedEpochReportJsonSchema = z.object({
  epoch: decimal(UINT64_MAX, 'uint64'),
  report: z.object({
    epoch: decimal(UINT64_MAX, 'uint64'),
    rulesHash: bytes32,
    readingsRoot: bytes32,
    rewardsRoot: bytes32,
    receiptsRoot: bytes32,
    total: decimal(UINT256_MAX, 'uint256'),
    accepted: z.number().int().min(0).max(0xffffffff),
  }),
  digest: bytes32,
  signer: addressHex,
  signature: signatureHex,
})

/** The JSON wire form of a signed report. */
export function toSignedEpochReportJson(signed: SignedEpochReport): SignedEpochReportJson {
  const { report } = signed
  return {
    epoch: signed.epoch.toString(),
    report: epochReportToJson(report),
    digest: signed.digest,
    signer: signed.signer,
    signature: signed.signature,
  }
}

/**
 * Checks that a signed report is self-consistent in this chain's EpochManager domain and returns it
 * in canonical form (lowercase hex, checksummed signer); throws `REPORT_INVALID` otherwise.
 */
export async function verifySignedEpochReport(
  chainId: number,
  epochManager: Address,
  signed: SignedEpochReport,
): Promise<SignedEpochReport> {
  const invalid = (message: string, details: Record<string, unknown> = {}) =>
    new DepinError('REPORT_INVALID', message, {
      details: { epoch: signed.epoch.toString(), signer: signed.signer, ...details },
    })
  const report: EpochReport = {
    epoch: signed.report.epoch,
    rulesHash: signed.report.rulesHash.toLowerCase() as Hex,
    readingsRoot: signed.report.readingsRoot.toLowerCase() as Hex,
    rewardsRoot: signed.report.rewardsRoot.toLowerCase() as Hex,
    receiptsRoot: signed.report.receiptsRoot.toLowerCase() as Hex,
    total: signed.report.total,
    accepted: signed.report.accepted,
  }
  if (report.epoch !== signed.epoch)
    throw invalid(`the report is for epoch ${report.epoch}, not ${signed.epoch}`)
  const digest = hashEpochReport(chainId, epochManager, report)
  if (digest !== signed.digest.toLowerCase())
    throw invalid('the digest is not the digest of the report', { expected: digest, received: signed.digest })
  const signature = signed.signature.toLowerCase() as Hex
  const problem = signatureShapeProblem(signature)
  if (problem) throw invalid(problem)
  let recovered: Address
  try {
    recovered = await recoverReportSigner(chainId, epochManager, report, signature)
  } catch (cause) {
    throw new DepinError('REPORT_INVALID', 'the signature does not recover', {
      details: { epoch: signed.epoch.toString(), signer: signed.signer },
      cause,
    })
  }
  if (recovered.toLowerCase() !== signed.signer.toLowerCase())
    throw invalid('the signature was not made by the signer', { recovered })
  return { epoch: signed.epoch, report, digest, signer: recovered, signature }
}

/** Whether two reports are the same, field by field (roots in lower case, as the wire schema gives them). */
const sameReport = (a: EpochReport, b: EpochReport) =>
  a.epoch === b.epoch &&
  a.rulesHash.toLowerCase() === b.rulesHash.toLowerCase() &&
  a.readingsRoot.toLowerCase() === b.readingsRoot.toLowerCase() &&
  a.rewardsRoot.toLowerCase() === b.rewardsRoot.toLowerCase() &&
  a.receiptsRoot.toLowerCase() === b.receiptsRoot.toLowerCase() &&
  a.total === b.total &&
  a.accepted === b.accepted

const compareReports = (x: SignedEpochReport, y: SignedEpochReport) => {
  const a = `${x.signer.toLowerCase()}${x.digest}`
  const b = `${y.signer.toLowerCase()}${y.digest}`
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * A report exchange over HTTP: a fastify server holding the reports it is given, and a client of
 * every peer's. `publish` keeps the report and posts it to every peer; `collect` merges the local
 * reports with those every peer holds, each checked before it is kept. A peer that is down, slow
 * (beyond `timeoutMs`) or answers an error is skipped: an exchange never fails for a peer.
 *
 * @example
 * const exchange = createHttpReportExchange({ chainId, epochManager, peers: ['http://10.0.0.2:9101'], port: 9101 })
 * await exchange.start()
 * const validator = await createValidator({ ...options, exchange })
 */
export function createHttpReportExchange(options: CreateHttpReportExchangeOptions): HttpReportExchange {
  const { chainId, epochManager } = options
  const timeoutMs = options.timeoutMs ?? 2_000
  const batchTimeoutMs = options.batchTimeoutMs ?? 60_000
  const maxBatchBytes = options.maxBatchBytes ?? 256 * 1024 * 1024
  const keepEpochs = options.keepEpochs ?? 64
  if (!Number.isInteger(keepEpochs) || keepEpochs < 1)
    throw new DepinError('CONFIG_INVALID', `keepEpochs must be a positive integer, not ${keepEpochs}`)
  let url = ''
  const normalize = (peer: string) => peer.replace(/\/+$/, '')
  /** The static peers and the discovered ones, each once, never this exchange itself. */
  const currentPeers = (): string[] => {
    const self = new Set([url, options.advertisedUrl ?? ''].map(normalize))
    const all = [...options.peers, ...(options.discoverPeers?.() ?? [])].map(normalize)
    return [...new Set(all)].filter((peer) => peer !== '' && !self.has(peer))
  }

  const reports = createSignedBoard<SignedEpochReport>({
    keepEpochs,
    maxSigners: MAX_SIGNERS_PER_EPOCH,
    maxPerSigner: MAX_REPORTS_PER_SIGNER,
    key: (signed) => signed.digest,
  })
  const held = (epoch: bigint) => reports.bySigner(epoch).flat().sort(compareReports)
  const batchSets = createSignedBoard<BatchSetAnnouncement>({
    keepEpochs,
    maxSigners: MAX_SIGNERS_PER_EPOCH,
    maxPerSigner: MAX_REPORTS_PER_SIGNER,
    key: (announcement) => announcement.signature,
  })
  const heldBatchSets = (epoch: bigint) => batchSets.bySigner(epoch).flat().sort(compareBatchSets)
  let batchSource: BatchSource = () => undefined
  let cumulativeSource: CumulativeSource = () => undefined
  let epochRecordSource: (epoch: bigint) => Uint8Array | undefined = () => undefined

  /** Whether each peer's last answer came (any status), or it was down or too slow. */
  const reached = new Map<string, boolean>()
  const reportError = (peer: string, action: PeerAction, error: unknown) => {
    if (!(error instanceof DepinError)) reached.set(peer, false) // down, slow, or not HTTP
    options.onPeerError?.({ peer, action, error })
  }
  const metrics = options.metrics ?? createMetrics('validator')
  metrics.gauge(
    'depin_validator_peers',
    'Peer validators known (configured and advertised on-chain)',
    [],
    (g) => g.set(currentPeers().length),
  )
  metrics.gauge(
    'depin_validator_peers_reachable',
    'Peer validators whose last request was answered (not down, not too slow)',
    [],
    (g) => g.set(currentPeers().filter((peer) => reached.get(peer) === true).length),
  )
  const admit = options.admit ?? (() => ({ type: 'admitted' }) as const)
  /** Keeps an item that is admitted (its signature already checked); says why not otherwise. */
  const keepAdmitted = <T extends { epoch: bigint; signer: Address }>(
    board: { keep(item: T): BoardKeepResult },
    item: T,
  ): BoardKeepResult | Admission => {
    const admission = admit(item)
    return admission.type === 'refused' ? admission : board.keep(item)
  }

  /** Posts one of this validator's items to a peer; a refusal it answers is returned, not thrown. */
  async function postToPeer(
    peer: string,
    path: string,
    body: string,
    action: PeerAction,
  ): Promise<PeerRefusal | undefined> {
    try {
      const response = await fetch(`${peer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      })
      reached.set(peer, true)
      let answer: { result?: string; error?: { code?: string; message?: string } } = {}
      try {
        answer = JSON.parse(await readCapped(response, 64 * 1024))
      } catch {
        // not JSON: judged by its status alone
      }
      if (response.ok && answer.result !== 'dropped') return undefined
      return {
        peer,
        code: answer.error?.code ?? `HTTP_${response.status}`,
        message: answer.error?.message ?? `${peer} answered ${response.status}`,
      }
    } catch (error) {
      reportError(peer, action, error)
      return undefined
    }
  }

  /** GETs a JSON list from a peer, keeping the items that parse and verify; [] when the peer fails. */
  async function listFromPeer<T extends { epoch: bigint; signer: Address }>(
    peer: string,
    epoch: bigint,
    list: PeerList<T>,
  ): Promise<T[]> {
    try {
      const response = await fetch(`${peer}${list.path}/${epoch}`, { signal: AbortSignal.timeout(timeoutMs) })
      reached.set(peer, true)
      if (!response.ok) {
        await response.body?.cancel()
        throw new DepinError('PEER_REFUSED', `${peer} answered ${response.status}`)
      }
      const body = JSON.parse(await readCapped(response, MAX_PEER_RESPONSE_BYTES)) as Record<string, unknown>
      const items = body?.[list.field]
      if (!Array.isArray(items))
        throw new DepinError('PEER_INVALID', `${peer} did not answer { ${list.field}: [...] }`)
      const verified: T[] = []
      for (const item of items.slice(0, MAX_SIGNERS_PER_EPOCH * MAX_REPORTS_PER_SIGNER)) {
        const parsed = list.schema.safeParse(item)
        if (!parsed.success || parsed.data.epoch !== epoch) continue
        if (admit(parsed.data).type === 'refused') continue // not a validator's: not even checked
        try {
          verified.push(await list.verify(parsed.data))
        } catch {
          // a peer passing on a bad item is not trusted for it; the others still count
        }
      }
      return verified
    } catch (error) {
      reportError(peer, 'collect', error)
      return []
    }
  }

  const toEveryPeer = async (path: string, body: string, action: PeerAction): Promise<PublishOutcome> => {
    const answers = await Promise.all(currentPeers().map((peer) => postToPeer(peer, path, body, action)))
    return { refusals: answers.filter((a): a is PeerRefusal => a !== undefined) }
  }
  const fromEveryPeer = <T extends { epoch: bigint; signer: Address }>(epoch: bigint, list: PeerList<T>) =>
    Promise.all(currentPeers().map((peer) => listFromPeer(peer, epoch, list)))

  // already held, so checked: skip the signature recovery (collecting runs on every tick)
  const verifyReport = async (signed: SignedEpochReport) =>
    reports.get(signed.epoch, signed.signer, signed.digest) ??
    verifySignedEpochReport(chainId, epochManager, signed)
  const verifyAnnouncement = async (announcement: BatchSetAnnouncement) =>
    batchSets.get(announcement.epoch, announcement.signer, announcement.signature) ??
    verifyBatchSet(chainId, epochManager, announcement)

  /** Keeps what peers hold and returns it merged with what is held here, each item once. */
  function merge<T>(
    local: readonly T[],
    fromPeers: readonly T[][],
    key: (item: T) => string,
    keep: (item: T) => unknown,
  ) {
    for (const items of fromPeers) for (const item of items) keep(item)
    // items of an epoch no longer kept here are still returned, deduplicated
    const merged = new Map<string, T>()
    for (const item of [...local, ...fromPeers.flat()])
      if (!merged.has(key(item))) merged.set(key(item), item)
    return [...merged.values()]
  }

  const server = createJsonServer(64 * 1024, metrics) // reports and batch sets are JSON only
  const limits = {
    posts: options.rateLimit?.postsPerSecond ?? 50,
    gets: options.rateLimit?.getsPerSecond ?? 600,
    batches: options.rateLimit?.batchesPerSecond ?? 10,
  }
  let batchesInFlight = 0
  const invalidBody = (reply: FastifyReply, what: string, issues: z.core.$ZodIssue[]) =>
    reply.status(400).send({
      error: {
        code: 'INVALID_BODY',
        message: `the body must be ${what}`,
        details: {
          issues: issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
        },
      },
    })
  const invalidItem = (reply: FastifyReply, error: unknown) => {
    if (!(error instanceof DepinError)) throw error
    return reply
      .status(400)
      .send({ error: { code: error.code, message: error.message, details: error.details } })
  }
  const epochParam = (reply: FastifyReply, raw: string): bigint | undefined => {
    if (/^\d{1,20}$/.test(raw) && BigInt(raw) <= UINT64_MAX) return BigInt(raw)
    reply
      .status(400)
      .send({ error: { code: 'INVALID_EPOCH', message: 'epoch must be a uint64 integer', details: {} } })
    return undefined
  }

  /** Answers what became of an offered item: kept (200), a duplicate (200), or refused with a code. */
  const answerKeep = (reply: FastifyReply, outcome: BoardKeepResult | Admission) => {
    if (outcome.type === 'stored' || outcome.type === 'duplicate') return { result: outcome.type }
    if (outcome.type === 'refused')
      return reply
        .status(outcome.code === 'SIGNER_NOT_VALIDATOR' ? 403 : 422)
        .send({ error: { code: outcome.code, message: outcome.message, details: {} } })
    if (outcome.type === 'admitted') throw new Error('unreachable: an admission is not a keep result')
    return reply.status(409).send({
      result: 'dropped',
      reason: outcome.reason,
      error: { code: outcome.reason, message: `the item was not kept: ${outcome.reason}`, details: {} },
    })
  }
  /** Refuses, before any signature recovery, what may not be kept at all. */
  const refusedEarly = (reply: FastifyReply, item: { epoch: bigint; signer: Address }) => {
    const admission = admit(item)
    return admission.type === 'refused' ? answerKeep(reply, admission) : undefined
  }
  const routes = async (app: FastifyInstance) => {
    await app.register(rateLimit, {
      global: true,
      max: (request) => (request.method === 'POST' ? limits.posts : limits.gets),
      // posts and gets counted apart: a flood of posts does not stop peers pulling what is held
      keyGenerator: (request) => `${request.ip} ${request.method === 'POST' ? 'POST' : 'GET'}`,
      timeWindow: 1000,
      // thrown by the plugin, turned into { error: { code, message, details } } by the JSON server
      errorResponseBuilder: (_request, context) =>
        Object.assign(
          new DepinError(
            'RATE_LIMITED',
            `more than ${context.max} requests a second from this address; retry in ${context.after}`,
            { details: { max: context.max }, retryable: true },
          ),
          { statusCode: 429 },
        ),
    })
    app.post('/v1/reports', async (request, reply) => {
      const parsed = signedEpochReportJsonSchema.safeParse(request.body)
      if (!parsed.success)
        return invalidBody(reply, 'one signed epoch report, bigints as decimal strings', parsed.error.issues)
      const early = refusedEarly(reply, parsed.data)
      if (early) return early
      try {
        // the very item held already (same digest and signature): no signature recovery again
        // (the very item: a report that differs from the one its digest names is not a duplicate)
        const known = reports.get(parsed.data.epoch, parsed.data.signer, parsed.data.digest)
        if (
          known &&
          known.signature === parsed.data.signature &&
          sameReport(known.report, parsed.data.report)
        )
          return { result: 'duplicate' }
        return answerKeep(
          reply,
          keepAdmitted(reports, await verifySignedEpochReport(chainId, epochManager, parsed.data)),
        )
      } catch (error) {
        return invalidItem(reply, error)
      }
    })
    app.get<{ Params: { epoch: string } }>('/v1/reports/:epoch', async (request, reply) => {
      const epoch = epochParam(reply, request.params.epoch)
      if (epoch === undefined) return reply
      return { epoch: epoch.toString(), reports: held(epoch).map(toSignedEpochReportJson) }
    })
    app.post('/v1/batch-sets', async (request, reply) => {
      const parsed = batchSetJsonSchema.safeParse(request.body)
      if (!parsed.success)
        return invalidBody(reply, 'one signed batch set, the epoch as a decimal string', parsed.error.issues)
      const early = refusedEarly(reply, parsed.data)
      if (early) return early
      try {
        const known = batchSets.get(parsed.data.epoch, parsed.data.signer, parsed.data.signature)
        if (known && known.batches.join() === canonicalBatchList(parsed.data.batches).join())
          return { result: 'duplicate' }
        return answerKeep(
          reply,
          keepAdmitted(batchSets, await verifyBatchSet(chainId, epochManager, parsed.data)),
        )
      } catch (error) {
        return invalidItem(reply, error)
      }
    })
    app.get<{ Params: { epoch: string } }>('/v1/batch-sets/:epoch', async (request, reply) => {
      const epoch = epochParam(reply, request.params.epoch)
      if (epoch === undefined) return reply
      return { epoch: epoch.toString(), batchSets: heldBatchSets(epoch).map(toBatchSetJson) }
    })
    // a batch may be hundreds of megabytes: few answers at once, and few per source and second
    app.get<{ Params: { hash: string } }>(
      '/v1/batches/by-hash/:hash',
      { config: { rateLimit: { max: limits.batches, timeWindow: 1000 } } },
      async (request, reply) => {
        if (!/^0x[0-9a-fA-F]{64}$/.test(request.params.hash)) {
          return reply
            .status(400)
            .send({ error: { code: 'INVALID_HASH', message: 'hash must be 0x + 64 hex', details: {} } })
        }
        if (batchesInFlight >= MAX_BATCHES_IN_FLIGHT) {
          return reply.status(503).send({
            error: {
              code: 'BUSY',
              message: 'serving as many batches as it can; ask another peer or retry',
              details: {},
            },
          })
        }
        const bytes = batchSource(request.params.hash.toLowerCase() as Hex)
        if (!bytes) {
          return reply.status(404).send({
            error: {
              code: 'BATCH_NOT_FOUND',
              message: `no batch with hash ${request.params.hash}`,
              details: {},
            },
          })
        }
        batchesInFlight++
        reply.raw.once('close', () => {
          batchesInFlight--
        })
        return reply
          .header('content-type', 'application/x-ndjson')
          .header('x-batch-hash', request.params.hash.toLowerCase())
          .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) // no copy
      },
    )

    // an epoch's record may be megabytes: as few a second as batches
    app.get<{ Params: { epoch: string } }>(
      '/v1/epoch-records/:epoch',
      { config: { rateLimit: { max: limits.batches, timeWindow: 1000 } } },
      async (request, reply) => {
        const epoch = epochParam(reply, request.params.epoch)
        if (epoch === undefined) return reply
        const bytes = epochRecordSource(epoch)
        if (!bytes) {
          return reply.status(404).send({
            error: {
              code: 'EPOCH_RECORD_NOT_FOUND',
              message: `no record of settled epoch ${epoch} here (not settled, or judged otherwise)`,
              details: {},
            },
          })
        }
        return reply
          .header('content-type', 'application/json')
          .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
      },
    )

    app.get<{ Params: { epoch: string } }>('/v1/cumulative/:epoch', async (request, reply) => {
      const epoch = epochParam(reply, request.params.epoch)
      if (epoch === undefined) return reply
      const amounts = cumulativeSource(epoch)
      if (!amounts) {
        return reply.status(404).send({
          error: {
            code: 'CUMULATIVE_NOT_FOUND',
            message: `no cumulative rewards after epoch ${epoch}`,
            details: {},
          },
        })
      }
      return {
        epoch: epoch.toString(),
        amounts: [...amounts].map(([account, amount]) => [account, amount.toString()]),
      }
    })
  }
  server.register(async (app) => {
    await routes(app)
    serveMetrics(app, metrics) // behind the GETs' limit
  })

  return {
    server,
    get url() {
      return url
    },
    async publish(signed) {
      const verified = await verifySignedEpochReport(chainId, epochManager, signed) // our own: a bug if not
      keepOwn(reports.keep(verified), 'report', verified)
      const body = JSON.stringify(toSignedEpochReportJson(verified))
      return toEveryPeer('/v1/reports', body, 'publish')
    },
    async collect(epoch) {
      const fromPeers = await fromEveryPeer(epoch, {
        path: '/v1/reports',
        field: 'reports',
        schema: signedEpochReportJsonSchema,
        verify: verifyReport,
      })
      const key = (signed: SignedEpochReport) => `${signed.signer.toLowerCase()}${signed.digest}`
      return merge(held(epoch), fromPeers, key, (item: SignedEpochReport) =>
        keepAdmitted(reports, item),
      ).sort(compareReports)
    },
    async announceBatches(announcement) {
      const verified = await verifyBatchSet(chainId, epochManager, announcement) // our own: a bug if not
      keepOwn(batchSets.keep(verified), 'batch set', verified)
      const body = JSON.stringify(toBatchSetJson(verified))
      return toEveryPeer('/v1/batch-sets', body, 'announce')
    },
    async collectBatchSets(epoch) {
      const fromPeers = await fromEveryPeer(epoch, {
        path: '/v1/batch-sets',
        field: 'batchSets',
        schema: batchSetJsonSchema,
        verify: verifyAnnouncement,
      })
      const key = (a: BatchSetAnnouncement) => `${a.signer.toLowerCase()}${a.signature}`
      return merge(heldBatchSets(epoch), fromPeers, key, (item: BatchSetAnnouncement) =>
        keepAdmitted(batchSets, item),
      ).sort(compareBatchSets)
    },
    serveBatches(source) {
      batchSource = source
    },
    async fetchBatch(hash, check) {
      for (const peer of currentPeers()) {
        try {
          const response = await fetch(`${peer}/v1/batches/by-hash/${hash}`, {
            signal: AbortSignal.timeout(batchTimeoutMs),
          })
          reached.set(peer, true) // it answered, whatever it said
          if (!response.ok) {
            await response.body?.cancel()
            if (response.status !== 404)
              reportError(
                peer,
                'fetchBatch',
                new DepinError('PEER_REFUSED', `${peer} answered ${response.status}`),
              )
            continue
          }
          const bytes = await readCappedBytes(response, maxBatchBytes)
          if (check(bytes)) return bytes
          reportError(
            peer,
            'fetchBatch',
            new DepinError('PEER_INVALID', `${peer} sent bytes that are not batch ${hash}`),
          )
        } catch (error) {
          reportError(peer, 'fetchBatch', error)
        }
      }
      return undefined
    },
    serveCumulative(source) {
      cumulativeSource = source
    },
    serveEpochRecords(source) {
      epochRecordSource = source
    },
    async fetchCumulative(epoch, check) {
      for (const peer of currentPeers()) {
        try {
          const response = await fetch(`${peer}/v1/cumulative/${epoch}`, {
            signal: AbortSignal.timeout(batchTimeoutMs),
          })
          reached.set(peer, true) // it answered, whatever it said
          if (!response.ok) {
            await response.body?.cancel()
            continue
          }
          const parsed = cumulativeJsonSchema.safeParse(JSON.parse(await readCapped(response, maxBatchBytes)))
          if (parsed.success && check(parsed.data.amounts)) return parsed.data.amounts
          reportError(
            peer,
            'fetchCumulative',
            new DepinError('PEER_INVALID', `${peer} sent amounts that are not epoch ${epoch}'s`),
          )
        } catch (error) {
          reportError(peer, 'fetchCumulative', error)
        }
      }
      return undefined
    },
    equivocations(epoch) {
      const found: ReportEquivocation[] = []
      for (const bySigner of reports.bySigner(epoch)) {
        const sorted = bySigner.sort(compareReports)
        for (let i = 0; i < sorted.length; i++) {
          for (let j = i + 1; j < sorted.length; j++) {
            const a = sorted[i] as SignedEpochReport
            const b = sorted[j] as SignedEpochReport
            found.push({ signer: a.signer, a, b })
          }
        }
      }
      return found
    },
    async start() {
      url = await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
    },
    async stop() {
      await server.close()
    },
  }
}

/** This validator's own item must be on its own board: peers that lost it pull it from there. */
function keepOwn(result: BoardKeepResult, what: string, item: { epoch: bigint; signer: Address }): void {
  if (result.type === 'dropped')
    throw new DepinError(
      'OWN_ITEM_DROPPED',
      `this validator's own ${what} for epoch ${item.epoch} was not kept: ${result.reason}`,
      {
        details: { epoch: item.epoch.toString(), reason: result.reason },
      },
    )
}

const compareBatchSets = (x: BatchSetAnnouncement, y: BatchSetAnnouncement) => {
  const a = `${x.signer.toLowerCase()}${x.signature}`
  const b = `${y.signer.toLowerCase()}${y.signature}`
  return a < b ? -1 : a > b ? 1 : 0
}
