/**
 * The sealed epoch batch: the versioned record a gateway hands to validators. Canonical bytes,
 * so its keccak-256 is its content address and any source (gateway or peer) will do:
 *
 *   line 1:  {"format":"depin-batch/1","epoch":"<e>","count":<n>}
 *   then n:  ["<device lower-case>","<seq>","<time>",["<v0>","<v1>",…],"<signature lower-case>"]
 *
 * Readings are ordered by device (lower-case hex), then seq ascending; every line ends in "\n".
 */
import { type Address, bytesToHex, type Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { SignedReading } from '../readings/reading.ts'

export const BATCH_FORMAT = 'depin-batch/1'

export type SealedBatch = { epoch: bigint; hash: Hex; count: number; bytes: Uint8Array }

/** Orders readings canonically: device (lower-case), then seq. */
export function compareReadings(a: SignedReading, b: SignedReading): number {
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
  for (const r of readings) {
    lines.push(
      `${JSON.stringify([r.device.toLowerCase(), r.seq.toString(), r.time.toString(), r.values.map(String), r.signature.toLowerCase()])}\n`,
    )
  }
  const bytes = new TextEncoder().encode(lines.join(''))
  return { epoch, hash: bytesToHex(keccak(bytes)), count: readings.length, bytes }
}

/**
 * Decodes a batch and checks it: the content address when `expectedHash` is given, the format,
 * the count and the canonical order. Throws BATCH_INVALID on any mismatch.
 */
export function decodeBatch(
  keccak: Keccak256,
  bytes: Uint8Array,
  expectedHash?: Hex,
): { epoch: bigint; hash: Hex; readings: SignedReading[] } {
  const hash = bytesToHex(keccak(bytes))
  if (expectedHash && hash !== expectedHash.toLowerCase()) {
    throw new DepinError(
      'BATCH_INVALID',
      `batch content hashes to ${hash}, not the announced ${expectedHash}`,
    )
  }
  const text = new TextDecoder().decode(bytes)
  const lines = text.split('\n')
  if (lines.pop() !== '') throw new DepinError('BATCH_INVALID', 'batch does not end in a newline')
  const header = JSON.parse(lines[0] ?? 'null') as { format?: string; epoch?: string; count?: number } | null
  if (
    header?.format !== BATCH_FORMAT ||
    typeof header.epoch !== 'string' ||
    header.count !== lines.length - 1
  ) {
    throw new DepinError(
      'BATCH_INVALID',
      'batch header is missing, of another format, or miscounts its readings',
    )
  }
  const readings: SignedReading[] = []
  for (let i = 1; i < lines.length; i++) {
    const [device, seq, time, values, signature] = JSON.parse(lines[i] as string) as [
      Address,
      string,
      string,
      string[],
      Hex,
    ]
    const reading = { device, seq: BigInt(seq), time: BigInt(time), values: values.map(BigInt), signature }
    const previous = readings[readings.length - 1]
    if (previous && compareReadings(previous, reading) >= 0) {
      throw new DepinError('BATCH_INVALID', `batch reading ${i} is out of canonical order`)
    }
    readings.push(reading)
  }
  return { epoch: BigInt(header.epoch), hash, readings }
}
