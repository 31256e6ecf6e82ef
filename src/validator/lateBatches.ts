/**
 * Late batches: a gateway that is down across an epoch's seal for longer than the validators wait
 * (gatewayWaitMs) seals that epoch's batch after the epoch's input was agreed without it. The
 * readings in it were acknowledged to their devices, so they must still count: a later epoch E's
 * batch set may list batches of the epochs E − LATE_BATCH_EPOCHS … E − 1 too. Such a batch counts
 * by the same rule as any other (announced by f + 1 active validators), its readings are judged
 * with E's, under E's rules and registry, in a window widened back to the oldest batch's epoch,
 * and every one of them already judged in a settled epoch is dropped first, so that no reading is
 * ever counted twice, whichever gateways and epochs it came through.
 */
import type { SignedReading } from '../readings/reading.ts'

/** Epochs back from the one being agreed whose late batches it may count. */
export const LATE_BATCH_EPOCHS = 6n

/** The epochs whose late batches epoch `epoch` may count, oldest first (none before epoch 0). */
export function lateEpochsOf(epoch: bigint): bigint[] {
  const epochs: bigint[] = []
  for (let e = epoch > LATE_BATCH_EPOCHS ? epoch - LATE_BATCH_EPOCHS : 0n; e < epoch; e++) epochs.push(e)
  return epochs
}

/**
 * The readings an epoch judges once late batches are in its input: those from before the epoch's
 * start (`epochStart`) that `judgedBefore` says were judged in a settled epoch are dropped (they
 * counted there, or were refused there: either way not again). Readings of the epoch itself cannot
 * have been judged before, so they are not looked up. Order is kept.
 */
export function dropJudgedBefore(
  readings: readonly SignedReading[],
  epochStart: bigint,
  judgedBefore: (device: string, seq: bigint) => boolean,
): { readings: SignedReading[]; dropped: number } {
  const kept = readings.filter((r) => r.time >= epochStart || !judgedBefore(r.device.toLowerCase(), r.seq))
  return { readings: kept, dropped: readings.length - kept.length }
}
