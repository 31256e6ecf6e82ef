/**
 * The sealed epoch batch: the versioned record a gateway hands to validators. Canonical bytes,
 * so its keccak-256 is its content address and any source (gateway or peer) will do:
 *
 *   line 1:  {"format":"depin-batch/1","epoch":"<e>","count":<n>}
 *   then n:  ["<device lower-case>","<seq>","<time>",["<v0>","<v1>",…],"<signature lower-case>"]
 *            with the record's kind index appended for any kind but the use case's first:
 *            [… ,"<signature>",<kind>]
 *
 * Readings are ordered by device (lower-case hex), then seq ascending; every line ends in "\n".
 */
import { type Address, bytesToHex, type Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { SignedReading } from '../readings/reading.ts'
import { READING_KIND, type RecordKind, recordValuesProblem } from '../readings/recordKinds.ts'

export const BATCH_FORMAT = 'depin-batch/1'

const UINT64_MAX = (1n << 64n) - 1n
const UINT64_DECIMAL = /^(0|[1-9]\d{0,19})$/
/** A value in canonical decimal: up to uint256 (a bytes32 field), negative for the signed types. */
const VALUE_DECIMAL = /^(0|-?[1-9]\d{0,77})$/
const DEVICE = /^0x[0-9a-f]{40}$/
const SIGNATURE = /^0x[0-9a-f]{130}$/

/** One line's JSON; BATCH_INVALID when it is not JSON. */
function parseLine(line: string, index: number): unknown {
  try {
    return JSON.parse(line)
  } catch {
    throw new DepinError('BATCH_INVALID', `batch line ${index} is not JSON`)
  }
}

/** A reading line's fields, each checked (shape, lower-case hex, integer ranges); BATCH_INVALID otherwise. */
function readingOfLine(value: unknown, index: number, kinds: readonly RecordKind[]): SignedReading {
  const invalid = (why: string) => new DepinError('BATCH_INVALID', `batch reading ${index}: ${why}`)
  if (!Array.isArray(value) || (value.length !== 5 && value.length !== 6))
    throw invalid('not [device, seq, time, values, signature] (and a kind)')
  const [device, seq, time, values, signature, kindIndex] = value as unknown[]
  if (
    value.length === 6 &&
    !(
      typeof kindIndex === 'number' &&
      Number.isInteger(kindIndex) &&
      kindIndex >= 1 &&
      kindIndex < kinds.length
    )
  )
    throw invalid(`kind is not one of the use case's record kinds 1…${kinds.length - 1}`)
  const kind = kinds[value.length === 6 ? (kindIndex as number) : 0] as RecordKind
  if (typeof device !== 'string' || !DEVICE.test(device)) throw invalid('device is not a lower-case address')
  for (const [name, field] of [
    ['seq', seq],
    ['time', time],
  ] as const)
    if (typeof field !== 'string' || !UINT64_DECIMAL.test(field) || BigInt(field) > UINT64_MAX)
      throw invalid(`${name} is not a uint64 decimal string`)
  if (!Array.isArray(values) || values.length > 32) throw invalid('values is not a list of at most 32')
  const numbers = values.map((v) => {
    if (typeof v !== 'string' || !VALUE_DECIMAL.test(v)) throw invalid('a value is not a decimal string')
    return BigInt(v)
  })
  const problem = recordValuesProblem(kind, numbers)
  if (problem) throw invalid(problem)
  if (typeof signature !== 'string' || !SIGNATURE.test(signature))
    throw invalid('signature is not 65 bytes of lower-case hex')
  return {
    device: device as Address,
    seq: BigInt(seq as string),
    time: BigInt(time as string),
    values: numbers,
    signature: signature as Hex,
    ...(value.length === 6 ? { kind: kindIndex as number } : {}),
  }
}

/** A record's batch line (canonical JSON, without the newline). */
function lineOf(r: SignedReading): string {
  const fields: unknown[] = [
    r.device.toLowerCase(),
    r.seq.toString(),
    r.time.toString(),
    r.values.map(String),
    r.signature.toLowerCase(),
  ]
  if (r.kind) fields.push(r.kind)
  return JSON.stringify(fields)
}

export type SealedBatch = { epoch: bigint; hash: Hex; count: number; bytes: Uint8Array }

/** Orders readings (records of any kind) canonically: device (lower-case), then seq. */
export function compareReadings(
  a: Pick<SignedReading, 'device' | 'seq'>,
  b: Pick<SignedReading, 'device' | 'seq'>,
): number {
  const da = a.device.toLowerCase()
  const db = b.device.toLowerCase()
  if (da !== db) return da < db ? -1 : 1
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0
}

/** Encodes readings (already in canonical order) as a batch and computes its content address. */
export function encodeBatch(
  keccak: Keccak256,
  epoch: bigint,
  readings: readonly SignedReading[],
): SealedBatch {
  const lines = [
    `${JSON.stringify({ format: BATCH_FORMAT, epoch: epoch.toString(), count: readings.length })}\n`,
  ]
  for (const r of readings) lines.push(`${lineOf(r)}\n`)
  const bytes = new TextEncoder().encode(lines.join(''))
  return { epoch, hash: bytesToHex(keccak(bytes)), count: readings.length, bytes }
}

/**
 * Decodes a batch and checks it: the content address when `expectedHash` is given, the format,
 * the count, the canonical order, and each record's values against its kind (of `kinds`, the
 * use case's; default the environment's Reading). Throws BATCH_INVALID on any mismatch.
 */
export function decodeBatch(
  keccak: Keccak256,
  bytes: Uint8Array,
  expectedHash?: Hex,
  kinds: readonly RecordKind[] = [READING_KIND],
): { epoch: bigint; hash: Hex; readings: SignedReading[] } {
  const hash = bytesToHex(keccak(bytes))
  if (expectedHash && hash !== expectedHash.toLowerCase()) {
    throw new DepinError(
      'BATCH_INVALID',
      `batch content hashes to ${hash}, not the announced ${expectedHash}`,
    )
  }
  // fatal: bytes that are not UTF-8 are refused, not replaced; ignoreBOM: a leading BOM is kept
  // (and refused by the header check), not silently dropped from bytes that are then not canonical
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    throw new DepinError('BATCH_INVALID', 'batch is not UTF-8 text')
  }
  const lines = text.split('\n')
  if (lines.pop() !== '') throw new DepinError('BATCH_INVALID', 'batch does not end in a newline')
  const header = parseLine(lines[0] ?? 'null', 0) as {
    format?: unknown
    epoch?: unknown
    count?: unknown
  } | null
  if (
    header?.format !== BATCH_FORMAT ||
    typeof header.epoch !== 'string' ||
    !UINT64_DECIMAL.test(header.epoch) ||
    BigInt(header.epoch) > UINT64_MAX ||
    header.count !== lines.length - 1 ||
    lines[0] !== JSON.stringify({ format: BATCH_FORMAT, epoch: header.epoch, count: header.count })
  ) {
    throw new DepinError(
      'BATCH_INVALID',
      'batch header is missing, of another format, not canonical, or miscounts its readings',
    )
  }
  const readings: SignedReading[] = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const reading = readingOfLine(parseLine(line, i), i, kinds)
    // canonical bytes: one encoding per batch, so its content address is the batch's only name
    if (line !== lineOf(reading))
      throw new DepinError('BATCH_INVALID', `batch reading ${i} is not in canonical form`)
    const previous = readings[readings.length - 1]
    if (previous && compareReadings(previous, reading) >= 0) {
      throw new DepinError('BATCH_INVALID', `batch reading ${i} is out of canonical order`)
    }
    readings.push(reading)
  }
  return { epoch: BigInt(header.epoch), hash, readings }
}
