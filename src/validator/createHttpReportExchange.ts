/**
 * Validators sharing their signed epoch reports over HTTP, between separate processes.
 *
 * In: `POST /v1/reports` — one signed report from a peer (or anyone). Out: `GET /v1/reports/:epoch`
 * — every signed report held for the epoch. Stored: in memory only, the last `keepEpochs` epochs.
 *
 * A report is kept only when it is self-consistent: its digest is the EIP-712 digest of its report
 * in this chain's EpochManager domain, its epoch is the report's epoch, and its signature (65 bytes,
 * v 27/28, low s as OpenZeppelin's ECDSA requires) recovers to its signer. Nothing is assumed about
 * the signer being an active validator: whoever submits checks that against the chain.
 * Two different reports by one signer for one epoch are both kept: that is equivocation evidence.
 */
import type { FastifyInstance } from 'fastify'
import { type Address, getAddress, type Hex } from 'viem'
import { z } from 'zod'
import { createJsonServer } from '../api/createJsonServer.ts'
import { hashEpochReport, recoverReportSigner } from '../chain/signEpochReport.ts'
import type { EpochReport } from '../chain/typedData.ts'
import { DepinError } from '../errors.ts'
import type { ReportExchange, SignedEpochReport } from './reportExchange.ts'

export type CreateHttpReportExchangeOptions = {
  chainId: number
  epochManager: Address
  /** Base URLs of the peer validators' exchanges, e.g. http://127.0.0.1:9101 */
  peers: readonly string[]
  host?: string
  /** 0 (default) takes a free port. */
  port?: number
  /** Milliseconds per peer request (default 2,000). */
  timeoutMs?: number
  /** Epochs kept in memory (default 64): older ones are dropped. */
  keepEpochs?: number
  /** Called when a peer is down, too slow or answers an error (the peer is skipped). */
  onPeerError?: (event: { peer: string; action: 'publish' | 'collect'; error: unknown }) => void
}

/** Two different reports signed by one validator for one epoch (for EpochManager.proveEquivocation). */
export type ReportEquivocation = { signer: Address; a: SignedEpochReport; b: SignedEpochReport }

/** What happened to a report offered to the store. */
export type StoreReportResult =
  | { type: 'stored' }
  | { type: 'duplicate' }
  | { type: 'dropped'; reason: 'EPOCH_TOO_OLD' | 'EPOCH_FULL' | 'SIGNER_FULL' }

export type HttpReportExchange = ReportExchange & {
  start(): Promise<void>
  stop(): Promise<void>
  /** Base URL once started, e.g. http://127.0.0.1:43121 */
  readonly url: string
  readonly server: FastifyInstance
  /** Pairs of different reports by one signer for the epoch, among those held locally. */
  equivocations(epoch: bigint): ReportEquivocation[]
}

/** The JSON wire form of a signed report: bigints as decimal strings. */
export type SignedEpochReportJson = {
  epoch: string
  report: { epoch: string; readingsRoot: Hex; rewardsRoot: Hex; total: string; accepted: number }
  digest: Hex
  signer: Address
  signature: Hex
}

const UINT64_MAX = (1n << 64n) - 1n
const UINT256_MAX = (1n << 256n) - 1n
/** secp256k1 group order / 2: a larger s is the malleated twin of a valid signature. */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n
/** The active set is capped at 31; room for inactive or departing signers, never unbounded. */
const MAX_SIGNERS_PER_EPOCH = 128
/** Two different reports are proof enough of equivocation; more would only take memory. */
const MAX_REPORTS_PER_SIGNER = 2
/** Largest peer answer read (MAX_SIGNERS_PER_EPOCH × MAX_REPORTS_PER_SIGNER reports fit easily). */
const MAX_PEER_RESPONSE_BYTES = 1024 * 1024

const decimal = (max: bigint, what: string) =>
  z
    .string()
    .regex(/^\d{1,78}$/, 'an unsigned integer as a decimal string')
    .transform((v) => BigInt(v))
    .refine((v) => v <= max, `out of ${what} range`)
const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, 'a 32-byte 0x hex string')
  .transform((v) => v.toLowerCase() as Hex)

/** Parses the JSON wire form of a signed report (shape and ranges only, not the signature). */
export const signedEpochReportJsonSchema = z.object({
  epoch: decimal(UINT64_MAX, 'uint64'),
  report: z.object({
    epoch: decimal(UINT64_MAX, 'uint64'),
    readingsRoot: bytes32,
    rewardsRoot: bytes32,
    total: decimal(UINT256_MAX, 'uint256'),
    accepted: z.number().int().min(0).max(0xffffffff),
  }),
  digest: bytes32,
  signer: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/, 'a 20-byte 0x address')
    .transform((v) => getAddress(v.toLowerCase())),
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte 0x signature')
    .transform((v) => v.toLowerCase() as Hex),
})

/** The JSON wire form of a signed report. */
export function toSignedEpochReportJson(signed: SignedEpochReport): SignedEpochReportJson {
  const { report } = signed
  return {
    epoch: signed.epoch.toString(),
    report: {
      epoch: report.epoch.toString(),
      readingsRoot: report.readingsRoot,
      rewardsRoot: report.rewardsRoot,
      total: report.total.toString(),
      accepted: report.accepted,
    },
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
    readingsRoot: signed.report.readingsRoot.toLowerCase() as Hex,
    rewardsRoot: signed.report.rewardsRoot.toLowerCase() as Hex,
    total: signed.report.total,
    accepted: signed.report.accepted,
  }
  if (report.epoch !== signed.epoch)
    throw invalid(`the report is for epoch ${report.epoch}, not ${signed.epoch}`)
  const digest = hashEpochReport(chainId, epochManager, report)
  if (digest !== signed.digest.toLowerCase())
    throw invalid('the digest is not the digest of the report', { expected: digest, received: signed.digest })
  const signature = signed.signature.toLowerCase() as Hex
  if (!/^0x[0-9a-f]{130}$/.test(signature)) throw invalid('the signature is not 65 bytes')
  const v = Number.parseInt(signature.slice(130, 132), 16)
  if (v !== 27 && v !== 28) throw invalid(`the signature's v is ${v}, not 27 or 28`)
  if (BigInt(`0x${signature.slice(66, 130)}`) > HALF_N) throw invalid("the signature's s is not low")
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
  const keepEpochs = options.keepEpochs ?? 64
  if (!Number.isInteger(keepEpochs) || keepEpochs < 1)
    throw new DepinError('CONFIG_INVALID', `keepEpochs must be a positive integer, not ${keepEpochs}`)
  const peers = options.peers.map((peer) => peer.replace(/\/+$/, ''))

  /** epoch → lowercase signer → digest → report; at most keepEpochs epochs, the newest. */
  const board = new Map<bigint, Map<string, Map<Hex, SignedEpochReport>>>()

  /** Stores a report already verified. Runs without awaiting, so requests never interleave in it. */
  function keep(signed: SignedEpochReport): StoreReportResult {
    let byEpoch = board.get(signed.epoch)
    if (!byEpoch) {
      if (board.size >= keepEpochs) {
        let oldest = signed.epoch
        for (const epoch of board.keys()) if (epoch < oldest) oldest = epoch
        if (oldest === signed.epoch) return { type: 'dropped', reason: 'EPOCH_TOO_OLD' }
        board.delete(oldest)
      }
      byEpoch = new Map()
      board.set(signed.epoch, byEpoch)
    }
    const signer = signed.signer.toLowerCase()
    let bySigner = byEpoch.get(signer)
    if (!bySigner) {
      if (byEpoch.size >= MAX_SIGNERS_PER_EPOCH) return { type: 'dropped', reason: 'EPOCH_FULL' }
      bySigner = new Map()
      byEpoch.set(signer, bySigner)
    }
    if (bySigner.has(signed.digest)) return { type: 'duplicate' }
    if (bySigner.size >= MAX_REPORTS_PER_SIGNER) return { type: 'dropped', reason: 'SIGNER_FULL' }
    bySigner.set(signed.digest, signed)
    return { type: 'stored' }
  }

  function held(epoch: bigint): SignedEpochReport[] {
    const all: SignedEpochReport[] = []
    for (const bySigner of board.get(epoch)?.values() ?? []) all.push(...bySigner.values())
    return all.sort(compareReports)
  }

  const reportError = (peer: string, action: 'publish' | 'collect', error: unknown) => {
    options.onPeerError?.({ peer, action, error })
  }

  async function postToPeer(peer: string, body: string): Promise<void> {
    try {
      const response = await fetch(`${peer}/v1/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      })
      await response.body?.cancel()
      if (!response.ok)
        reportError(peer, 'publish', new DepinError('PEER_REFUSED', `${peer} answered ${response.status}`))
    } catch (error) {
      reportError(peer, 'publish', error)
    }
  }

  async function fetchFromPeer(peer: string, epoch: bigint): Promise<SignedEpochReport[]> {
    try {
      const signal = AbortSignal.timeout(timeoutMs)
      const response = await fetch(`${peer}/v1/reports/${epoch}`, { signal })
      if (!response.ok) {
        await response.body?.cancel()
        throw new DepinError('PEER_REFUSED', `${peer} answered ${response.status}`)
      }
      const body = JSON.parse(await readCapped(response, MAX_PEER_RESPONSE_BYTES)) as { reports?: unknown }
      if (!Array.isArray(body?.reports))
        throw new DepinError('PEER_INVALID', `${peer} did not answer { reports: [...] }`)
      const verified: SignedEpochReport[] = []
      for (const item of body.reports.slice(0, MAX_SIGNERS_PER_EPOCH * MAX_REPORTS_PER_SIGNER)) {
        const parsed = signedEpochReportJsonSchema.safeParse(item)
        if (!parsed.success || parsed.data.epoch !== epoch) continue
        // already held, checked: skip the signature recovery (collect runs on every leader tick)
        const own = board.get(epoch)?.get(parsed.data.signer.toLowerCase())?.get(parsed.data.digest)
        if (own) {
          verified.push(own)
          continue
        }
        try {
          verified.push(await verifySignedEpochReport(chainId, epochManager, parsed.data))
        } catch {
          // a peer passing on a bad report is not trusted for it; the others still count
        }
      }
      return verified
    } catch (error) {
      reportError(peer, 'collect', error)
      return []
    }
  }

  const server = createJsonServer(64 * 1024) // reports are JSON only

  server.post('/v1/reports', async (request, reply) => {
    const parsed = signedEpochReportJsonSchema.safeParse(request.body)
    if (!parsed.success) {
      return reply.status(400).send({
        error: {
          code: 'INVALID_BODY',
          message: 'the body must be one signed epoch report, bigints as decimal strings',
          details: {
            issues: parsed.error.issues.map((issue) => ({
              path: issue.path.join('.'),
              message: issue.message,
            })),
          },
        },
      })
    }
    let verified: SignedEpochReport
    try {
      verified = await verifySignedEpochReport(chainId, epochManager, parsed.data)
    } catch (error) {
      if (!(error instanceof DepinError)) throw error
      return reply
        .status(400)
        .send({ error: { code: error.code, message: error.message, details: error.details } })
    }
    const { type, ...rest } = keep(verified)
    return { result: type, ...rest }
  })

  server.get<{ Params: { epoch: string } }>('/v1/reports/:epoch', async (request, reply) => {
    if (!/^\d{1,20}$/.test(request.params.epoch) || BigInt(request.params.epoch) > UINT64_MAX) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_EPOCH', message: 'epoch must be a uint64 integer', details: {} } })
    }
    const epoch = BigInt(request.params.epoch)
    return { epoch: epoch.toString(), reports: held(epoch).map(toSignedEpochReportJson) }
  })

  let url = ''
  return {
    server,
    get url() {
      return url
    },
    async publish(signed) {
      const verified = await verifySignedEpochReport(chainId, epochManager, signed) // our own: a bug if not
      keep(verified)
      const body = JSON.stringify(toSignedEpochReportJson(verified))
      await Promise.all(peers.map((peer) => postToPeer(peer, body)))
    },
    async collect(epoch) {
      const fromPeers = await Promise.all(peers.map((peer) => fetchFromPeer(peer, epoch)))
      for (const reports of fromPeers) for (const signed of reports) keep(signed)
      // Reports of an epoch this exchange no longer keeps are still returned, deduplicated.
      const merged = new Map<string, SignedEpochReport>()
      for (const signed of [...held(epoch), ...fromPeers.flat()]) {
        const key = `${signed.signer.toLowerCase()}${signed.digest}`
        if (!merged.has(key)) merged.set(key, signed)
      }
      return [...merged.values()].sort(compareReports)
    },
    equivocations(epoch) {
      const found: ReportEquivocation[] = []
      for (const bySigner of board.get(epoch)?.values() ?? []) {
        const reports = [...bySigner.values()].sort(compareReports)
        for (let i = 0; i < reports.length; i++) {
          for (let j = i + 1; j < reports.length; j++) {
            const a = reports[i] as SignedEpochReport
            const b = reports[j] as SignedEpochReport
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

/** Reads a response body as text, refusing one larger than `limit` bytes. */
async function readCapped(response: Response, limit: number): Promise<string> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new DepinError('PEER_INVALID', `answer larger than ${limit} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
