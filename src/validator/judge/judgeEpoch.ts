import type { Address, Hex } from 'viem'
import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../../crypto/keccak.ts'
import type { ReadingHasher } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { UseCase } from '../../usecases/useCase.ts'
import { checkReadingSignatures } from './checkReadingSignatures.ts'
import { judgeCheckedReadings } from './judgeCheckedReadings.ts'
import type { DeviceRecord, DeviceScore, JudgedReading, RejectReason } from './judgement.ts'
import { orderReadings } from './orderReadings.ts'

export type JudgeEpochInput = {
  blueprint: Blueprint
  /** The use case whose rules judge the epoch; default: the one the blueprint names. */
  useCase?: UseCase
  epoch: bigint
  /** The epoch's window in unix seconds, [epochStart, epochEnd). */
  epochStart: bigint
  epochEnd: bigint
  /**
   * The earliest record time admitted (default epochStart): the start of the oldest epoch whose
   * late batch counts in this one (src/validator/lateBatches.ts).
   */
  recordsFrom?: bigint
  /**
   * The epoch's randomness (epochRandomness), handed to the use case's rules. A validator always
   * gives it; without it (tools and tests judging outside a chain) the rules see zero.
   */
  randomness?: Hex
  /** The records' domain (chain, DeviceRegistry), for rules that check signatures of their own. */
  network?: { chainId: number; deviceRegistry: Address }
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
 * Judges one epoch's batch, purely and deterministically: the same batch and registry give every
 * validator the same verdicts, scores and root, bit for bit, whatever the batch's order. In order:
 * 1. canonical order, duplicates of (device, seq) removed (see orderReadings);
 * 2. each reading: signature recovers (low s) to its device, device registered and active;
 * 3. the use case's rules over the whole epoch (the environment's: schema, ranges and epoch window,
 *    per-device sequence, rate and stuck values, spatial consistency — src/usecases/environment);
 * 4. scores by the use case's weighting; 5. readings root.
 * Signatures are checked on this thread; judgeEpochInParallel spreads them over worker threads.
 */
export function judgeEpoch(input: JudgeEpochInput): JudgeEpochResult {
  const ordered = orderReadings(input.readings)
  const checks = checkReadingSignatures(ordered.readings, input.digest, input.keccak)
  return judgeCheckedReadings({ ...input, ordered, checks })
}
