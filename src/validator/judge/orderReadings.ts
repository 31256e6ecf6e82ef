import type { SignedReading } from '../../readings/reading.ts'

/** One device's run of readings inside the canonical order. */
export type DeviceRun = {
  /** The device address in lower case: the grouping and sorting key. */
  device: string
  /** Its readings are ordered[start..end). */
  start: number
  end: number
}

export type OrderReadingsReturnType = {
  /** Canonical order: by device (lower-case hex), then seq ascending; one reading per (device, seq). */
  readings: SignedReading[]
  /** One run per device, in the same order. */
  runs: DeviceRun[]
  /** sources[p] = index in the batch of readings[p]. */
  sources: Uint32Array
  /** Duplicates dropped (not judged, not counted anywhere). */
  dropped: number
}

/**
 * Puts a batch into the one canonical order every validator judges in, whatever order it came in:
 * by device address as lower-case hex, then seq ascending. Readings sharing (device, seq) are
 * duplicates and only one is kept: the one whose signature, as lower-case hex, sorts lowest. If the
 * signatures are equal too (the same signature cannot be valid for two contents), the remaining
 * fields decide (time, then values, then the exact device and signature spelling), so the choice
 * never depends on arrival order. The rest are dropped silently.
 */
export function orderReadings(batch: readonly SignedReading[]): OrderReadingsReturnType {
  // Batch indices per device. Addresses are lower-cased once per distinct spelling, not per reading.
  const byDevice = new Map<string, number[]>()
  const keyOf = new Map<unknown, string>()
  for (let i = 0; i < batch.length; i++) {
    const spelling = (batch[i] as SignedReading).device
    let device = keyOf.get(spelling)
    if (device === undefined) {
      device = String(spelling).toLowerCase()
      keyOf.set(spelling, device)
    }
    const run = byDevice.get(device)
    if (run === undefined) byDevice.set(device, [i])
    else run.push(i)
  }
  const devices = [...byDevice.keys()].sort()
  const readings: SignedReading[] = []
  const sources = new Uint32Array(batch.length)
  const runs: DeviceRun[] = []
  let dropped = 0
  const compare = (a: number, b: number) =>
    compareReadings(batch[a] as SignedReading, batch[b] as SignedReading)
  for (const device of devices) {
    const run = byDevice.get(device) as number[]
    // batches come merged in canonical order: a run strictly ascending by seq holds no duplicate
    // and is what the sort would give, so it is only checked
    if (!strictlyAscending(batch, run)) run.sort(compare)
    const start = readings.length
    let previous: SignedReading | undefined
    for (const index of run) {
      const reading = batch[index] as SignedReading
      if (previous !== undefined && previous.seq === reading.seq) {
        dropped++
        continue
      }
      sources[readings.length] = index
      readings.push(reading)
      previous = reading
    }
    runs.push({ device, start, end: readings.length })
  }
  return { readings, runs, sources: sources.slice(0, readings.length), dropped }
}

function strictlyAscending(batch: readonly SignedReading[], run: readonly number[]): boolean {
  for (let k = 1; k < run.length; k++) {
    const a = (batch[run[k - 1] as number] as SignedReading).seq
    const b = (batch[run[k] as number] as SignedReading).seq
    if (typeof a !== 'bigint' || typeof b !== 'bigint' || !(a < b)) return false
  }
  return true
}

/** Within one device: seq ascending, then the duplicate tie-break (the kept one first). */
function compareReadings(a: SignedReading, b: SignedReading): number {
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1
  return (
    compareStrings(String(a.signature).toLowerCase(), String(b.signature).toLowerCase()) ||
    compareBigints(a.time, b.time) ||
    (a.kind ?? 0) - (b.kind ?? 0) ||
    compareValues(a.values, b.values) ||
    compareStrings(String(a.device), String(b.device)) ||
    compareStrings(String(a.signature), String(b.signature))
  )
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const compareBigints = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0)

function compareValues(a: readonly bigint[], b: readonly bigint[]): number {
  if (a.length !== b.length) return a.length - b.length
  for (let i = 0; i < a.length; i++) {
    const d = compareBigints(a[i] as bigint, b[i] as bigint)
    if (d !== 0) return d
  }
  return 0
}
