/**
 * Late batches: a gateway that is down across an epoch's seal for longer than the validators wait
 * (gatewayWaitMs) seals that epoch's batch after the epoch's input was agreed without it. The
 * readings in it were acknowledged to their devices, so they must still count: a later epoch E's
 * batch set may list batches of the epochs E − LATE_BATCH_EPOCHS … E − 1 too. Such a batch counts
 * by the same rule as any other (announced by f + 1 active validators). Its readings are judged
 * with E's, under E's rules and registry, in a window widened back to the oldest batch's epoch,
 * after two cuts that keep a device from earning twice for the same time:
 * - a late batch brings only readings timed in its own epoch, and E's batches only E's;
 * - a device's late readings of an epoch are dropped when a settled epoch accepted any reading of
 *   that device timed in that epoch (so a device whose stream was split over an on-time and a late
 *   gateway is not judged twice over the same span, each half alone passing the rate limit).
 * The settled epochs' accepted readings are fixed by their readings roots on-chain, so every
 * honest validator cuts the same readings.
 */
import type { SignedReading } from '../readings/reading.ts'
import type { CheckedBatch } from './epochBatches.ts'

/** Epochs back from the one being agreed whose late batches it may count. */
export const LATE_BATCH_EPOCHS = 6n

/** The epochs whose late batches epoch `epoch` may count, oldest first (none before epoch 0). */
export function lateEpochsOf(epoch: bigint): bigint[] {
  const epochs: bigint[] = []
  for (let e = epoch > LATE_BATCH_EPOCHS ? epoch - LATE_BATCH_EPOCHS : 0n; e < epoch; e++) epochs.push(e)
  return epochs
}

/** An epoch's window in unix seconds, [start, end). */
export type EpochWindow = (epoch: bigint) => { start: bigint; end: bigint }

/**
 * An input's batches, each keeping only the readings timed in its own epoch when late batches are
 * among them (`countsLate`: the use case counts late records; otherwise late batches bring
 * nothing). Without late batches the input is left as it is (the rules refuse what lies outside
 * the epoch, as before).
 */
export function ownEpochReadings(
  epoch: bigint,
  batches: readonly CheckedBatch[],
  windowOf: EpochWindow,
  countsLate: boolean,
): CheckedBatch[] {
  if (!batches.some((b) => b.epoch < epoch)) return [...batches]
  return batches.map((batch) => {
    if (batch.epoch < epoch && !countsLate) return { ...batch, readings: [] }
    const { start, end } = windowOf(batch.epoch)
    const readings = batch.readings.filter((r) => r.time >= start && r.time < end)
    return readings.length === batch.readings.length ? batch : { ...batch, readings }
  })
}

/**
 * The readings an epoch judges once late batches are in its input: those from before the epoch's
 * start whose device had a reading timed in the same epoch accepted by a settled epoch
 * (`acceptedIn(device, epoch of the reading)`) are dropped; each (device, epoch) is asked once.
 * Order is kept.
 */
export function dropCountedBefore(
  readings: readonly SignedReading[],
  epochStart: bigint,
  epochOf: (time: bigint) => bigint,
  acceptedIn: (device: string, epoch: bigint) => boolean,
): { readings: SignedReading[]; dropped: number } {
  const asked = new Map<string, boolean>()
  const kept = readings.filter((r) => {
    if (r.time >= epochStart) return true
    const device = r.device.toLowerCase()
    const epoch = epochOf(r.time)
    const key = `${device}:${epoch}`
    let counted = asked.get(key)
    if (counted === undefined) {
      counted = acceptedIn(device, epoch)
      asked.set(key, counted)
    }
    return !counted
  })
  return { readings: kept, dropped: readings.length - kept.length }
}
