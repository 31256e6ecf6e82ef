/**
 * A validator's side of sealed epoch batches: fetching them from gateways (by epoch or by
 * content address), checking each against its content address, and merging the batches that
 * count into the one canonical list of readings it judges.
 */
import type { Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import { compareReadings, decodeBatch } from '../gateway/batchFormat.ts'
import type { SignedReading } from '../readings/reading.ts'
import { READING_KIND, type RecordKind } from '../readings/recordKinds.ts'
import { readCappedBytes } from './readCapped.ts'
import { bytes32 } from './wireSchemas.ts'

/** Largest sealed batch a validator reads from a gateway or peer (1,000,000 readings fit). */
const MAX_BATCH_BYTES = 256 * 1024 * 1024

/** A batch checked against its content address. */
export type CheckedBatch = { epoch: bigint; hash: Hex; readings: SignedReading[]; bytes: Uint8Array }

export type GatewayBatchResult =
  | { type: 'sealed'; batch: CheckedBatch }
  /** Not sealed (404), down, too slow or answering an error: ask again later. */
  | { type: 'unavailable'; reason: string }
  /** Bytes that are not what they claim to be: the gateway misbehaves. */
  | { type: 'invalid'; reason: string }

export type FetchBatchOptions = {
  /** Milliseconds for the whole request (default 10,000). */
  timeoutMs?: number
  /** Largest batch read, in bytes (default 256 MiB): a larger answer is refused while it streams in. */
  maxBytes?: number
  /** Sent with the request, e.g. who is asking. */
  headers?: Record<string, string>
  /** The use case's record kinds, each record's values checked against its own (default: Reading). */
  kinds?: readonly RecordKind[]
}

/** Epochs a batch may belong to: one, or an inclusive range (an epoch's own and its late ones). */
export type BatchEpochs = bigint | { from: bigint; to: bigint }

/**
 * Decodes bytes as a batch of `epochs` (one epoch, or one of a range) with content address
 * `hash`; throws BATCH_INVALID otherwise.
 */
export function checkBatch(
  keccak: Keccak256,
  bytes: Uint8Array,
  hash: Hex,
  epochs: BatchEpochs,
  kinds: readonly RecordKind[] = [READING_KIND],
): CheckedBatch {
  const decoded = decodeBatch(keccak, bytes, hash, kinds)
  const { from, to } = typeof epochs === 'bigint' ? { from: epochs, to: epochs } : epochs
  if (decoded.epoch < from || decoded.epoch > to)
    throw new DepinError(
      'BATCH_INVALID',
      `batch ${hash} is epoch ${decoded.epoch}'s, not ${from === to ? `${from}'s` : `one of ${from}–${to}`}`,
    )
  return { ...decoded, bytes }
}

/** Fetches a gateway's sealed batch of an epoch (`GET /v1/batches/:epoch`). Never throws for the gateway's faults. */
export async function fetchGatewayBatch(
  keccak: Keccak256,
  url: string,
  epoch: bigint,
  options: FetchBatchOptions = {},
): Promise<GatewayBatchResult> {
  let response: Response
  try {
    response = await fetch(`${url}/v1/batches/${epoch}`, {
      headers: options.headers ?? {},
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    })
  } catch (error) {
    return { type: 'unavailable', reason: error instanceof Error ? error.message : String(error) }
  }
  if (!response.ok) {
    await response.body?.cancel()
    return { type: 'unavailable', reason: `${url} answered ${response.status} for epoch ${epoch}` }
  }
  const hash = response.headers.get('x-batch-hash') as Hex | null
  try {
    const bytes = await readCappedBytes(response, options.maxBytes ?? MAX_BATCH_BYTES)
    if (!hash) throw new DepinError('BATCH_INVALID', `${url} sent epoch ${epoch}'s batch without its hash`)
    return { type: 'sealed', batch: checkBatch(keccak, bytes, hash, epoch, options.kinds) }
  } catch (error) {
    // malformed or oversized: the gateway misbehaves; anything else (a reset stream): ask again
    if (error instanceof DepinError && (error.code === 'BATCH_INVALID' || error.code === 'PEER_INVALID'))
      return { type: 'invalid', reason: `${url}: ${error.message}` }
    return { type: 'unavailable', reason: error instanceof Error ? error.message : String(error) }
  }
}

/**
 * The content address of a gateway's sealed batch of an epoch, without its bytes
 * (`HEAD /v1/batches/:epoch`): undefined while it is not sealed, down or answering nonsense.
 */
export async function fetchGatewayBatchHash(
  url: string,
  epoch: bigint,
  options: Pick<FetchBatchOptions, 'timeoutMs' | 'headers'> = {},
): Promise<Hex | undefined> {
  try {
    const response = await fetch(`${url}/v1/batches/${epoch}`, {
      method: 'HEAD',
      headers: options.headers ?? {},
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    })
    await response.body?.cancel()
    const hash = bytes32.safeParse(response.headers.get('x-batch-hash'))
    return response.ok && hash.success ? hash.data : undefined
  } catch {
    return undefined
  }
}

/** Fetches a batch by content address from the first of `urls` that has it (`GET /v1/batches/by-hash/:hash`). */
export async function fetchBatchByHash(
  keccak: Keccak256,
  urls: readonly string[],
  hash: Hex,
  epochs: BatchEpochs,
  options: FetchBatchOptions = {},
): Promise<CheckedBatch | undefined> {
  for (const url of urls) {
    try {
      const response = await fetch(`${url}/v1/batches/by-hash/${hash}`, {
        headers: options.headers ?? {},
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      })
      if (!response.ok) {
        await response.body?.cancel()
        continue
      }
      return checkBatch(
        keccak,
        await readCappedBytes(response, options.maxBytes ?? MAX_BATCH_BYTES),
        hash,
        epochs,
        options.kinds,
      )
    } catch {
      // down, slow or lying: the next source will do
    }
  }
  return undefined
}

/**
 * The union of an epoch's batches in canonical order, identical readings once. Where batches
 * disagree on a (device, seq) — different contents or signatures — only the authentic ones are
 * kept when there are any (`isAuthentic`: the signature recovers to the device), so that nobody
 * able to add to a batch can push out a device's real reading with a forged twin; the judge
 * breaks any tie left.
 */
export function mergeBatches(
  batches: readonly CheckedBatch[],
  isAuthentic: (reading: SignedReading) => boolean = () => true,
): SignedReading[] {
  const all = batches.flatMap((batch) => batch.readings)
  const bySignature = (a: SignedReading, b: SignedReading) => {
    const [x, y] = [a.signature.toLowerCase(), b.signature.toLowerCase()]
    return x < y ? -1 : x > y ? 1 : 0
  }
  // the whole content: a copy of an honest signature on other content is a twin, not the same
  // record, and must not push the honest one out before the signatures are looked at
  const byContent = (a: SignedReading, b: SignedReading) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1
    if ((a.kind ?? 0) !== (b.kind ?? 0)) return (a.kind ?? 0) - (b.kind ?? 0)
    if (a.values.length !== b.values.length) return a.values.length - b.values.length
    for (let k = 0; k < a.values.length; k++) {
      const [x, y] = [a.values[k] as bigint, b.values[k] as bigint]
      if (x !== y) return x < y ? -1 : 1
    }
    return 0
  }
  all.sort((a, b) => compareReadings(a, b) || bySignature(a, b) || byContent(a, b))
  const unique = all.filter((r, i) => {
    const previous = all[i - 1]
    return (
      !previous ||
      compareReadings(previous, r) !== 0 ||
      bySignature(previous, r) !== 0 ||
      byContent(previous, r) !== 0
    )
  })
  const readings: SignedReading[] = []
  for (let i = 0; i < unique.length; ) {
    let j = i + 1
    while (j < unique.length && compareReadings(unique[i] as SignedReading, unique[j] as SignedReading) === 0)
      j++
    const twins = unique.slice(i, j)
    const authentic = twins.length > 1 ? twins.filter(isAuthentic) : twins
    readings.push(...(authentic.length > 0 ? authentic : twins))
    i = j
  }
  return readings
}
