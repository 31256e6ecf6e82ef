import type { Hex } from 'viem'
import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../../crypto/keccak.ts'
import type { ReadingHasher } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { checkReadingSignatures } from './checkReadingSignatures.ts'
import { judgeCheckedReadings } from './judgeCheckedReadings.ts'
import type { DeviceRecord, DeviceScore, JudgedReading, RejectReason } from './judgement.ts'
import { orderReadings } from './orderReadings.ts'

export type JudgeEpochInput = {
  blueprint: Blueprint
  epoch: bigint
  /** The epoch's window in unix seconds, [epochStart, epochEnd). */
  epochStart: bigint
  epochEnd: bigint
  /** The epoch's batch: any order, may hold duplicates. */
  readings: readonly SignedReading[]
  /** Registry state at the epoch's end, by lower-case device address. */
  devices: ReadonlyMap<string, DeviceRecord>
  /** createReadingHasher(chainId, deviceRegistry) */
  digest: ReadingHasher
  keccak: Keccak256
}

export type JudgeEpochResult = {
  /** Every reading after duplicate removal, in canonical order (device lower-case hex, then seq). */
  judged: JudgedReading[]
  /** One score per registered device with at least one reading, by address ascending. */
  devices: DeviceScore[]
  accepted: number
  /** Rejections per reason; every reason is present, zero when unused. */
  rejectedByReason: Record<RejectReason, number>
  /** Root of the tree of accepted readings' digests, or EMPTY_READINGS_ROOT when none is accepted. */
  readingsRoot: Hex
}

/**
 * Judges one epoch's batch by the blueprint's rules, purely and deterministically: the same batch
 * and registry give every validator the same verdicts, scores and root, bit for bit, whatever the
 * batch's order. Rules, in order:
 * 1. canonical order, duplicates of (device, seq) removed (see orderReadings);
 * 2. each reading: signature recovers (low s) to its device, device registered and active, as many
 *    values as the class has fields, each within [min, max], time within [epochStart, epochEnd);
 * 3. each device in seq order: time strictly increasing, minIntervalSeconds since the last accepted
 *    reading, no stuckWindow identical readings in a row;
 * 4. spatial consistency against neighbouring devices of the class (see computeSpatialBounds);
 * 5. scores; 6. readings root.
 * Signatures are checked on this thread; judgeEpochInParallel spreads them over worker threads.
 */
export function judgeEpoch(input: JudgeEpochInput): JudgeEpochResult {
  const ordered = orderReadings(input.readings)
  const checks = checkReadingSignatures(ordered.readings, input.digest, input.keccak)
  return judgeCheckedReadings({ ...input, ordered, checks })
}
