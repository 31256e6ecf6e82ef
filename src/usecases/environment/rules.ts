/**
 * The environmental sensors' rules over an epoch (rules 2–5 of the judge, past the pipeline's
 * signature and registry checks): schema, ranges and the epoch window; per device in seq order
 * time increasing, rate and stuck values; spatial consistency against neighbouring devices of
 * the class; each device's quality and uptime, and its weight accepted × quality.
 */

import type { DeviceClassRules } from '../../blueprint/loadBlueprint.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { DeviceRecord } from '../../validator/judge/judgement.ts'
import { lowerMedian } from '../../validator/judge/lowerMedian.ts'
import { ACCEPTED, type DeviceUnits, type RulesInput } from '../useCase.ts'
import { computeSpatialBounds, type SpatialDevice } from './computeSpatialBounds.ts'
import {
  type EnvironmentClass,
  environmentClasses,
  environmentClassOf,
  type Quality,
} from './environmentClass.ts'

/** Why the environment's rules reject a reading, in the order they run. */
export const ENVIRONMENT_REJECT_REASONS = [
  'SCHEMA_MISMATCH',
  'OUT_OF_RANGE',
  'OUTSIDE_EPOCH',
  'SEQUENCE_NOT_INCREASING',
  'RATE_LIMITED',
  'STUCK_VALUE',
  'SPATIAL_OUTLIER',
] as const

type Codes = Record<(typeof ENVIRONMENT_REJECT_REASONS)[number], number>

/**
 * Decides every reading the pipeline left at ACCEPTED and returns each run's quality and uptime
 * (in basis points: integer division, floored).
 */
export function judgeEnvironment(input: RulesInput): Readonly<Record<string, number>>[] {
  const { blueprint, devices, readings, runs, verdicts } = input
  const codes = Object.fromEntries(ENVIRONMENT_REJECT_REASONS.map((r) => [r, input.code(r)])) as Codes

  // Per device: its class rules if it is registered, active and of a known class, and where its
  // accepted values go. The values of readings accepted by rules 2–3 are copied, device by device and
  // field by field (run r, field f, k-th accepted: columns[base[r] + f × length + k]), into one typed
  // array: rule 4 sorts those columns natively and scans them instead of the scattered reading objects.
  const runRules: (EnvironmentClass | undefined)[] = []
  const base = new Uint32Array(runs.length)
  let columnsLength = 0
  runs.forEach((run, r) => {
    const record = devices.get(run.device)
    const rules = record?.status === 'active' ? environmentClassOf(blueprint, record.deviceClass) : undefined
    runRules.push(rules)
    base[r] = columnsLength
    columnsLength += rules === undefined ? 0 : (run.end - run.start) * rules.fields.length
  })
  const columns = new BigInt64Array(columnsLength)
  const acceptedOfRun = new Uint32Array(runs.length)

  // 2 and 3 in one pass per device: rule 3 on a reading only looks at earlier readings of its device.
  runs.forEach((run, r) => {
    const record = devices.get(run.device)
    const rules = runRules[r]
    const judgeSequence = rules === undefined ? undefined : sequenceJudge(rules.quality, codes)
    const contentRules = record === undefined ? undefined : environmentClassOf(blueprint, record.deviceClass)
    const length = run.end - run.start
    let k = 0
    for (let i = run.start; i < run.end; i++) {
      if (verdicts[i] !== ACCEPTED || record === undefined) continue
      const reading = readings[i] as SignedReading
      let code = judgeContent(reading, contentRules, input, codes)
      if (code === ACCEPTED && judgeSequence !== undefined) code = judgeSequence(reading)
      verdicts[i] = code
      if (code !== ACCEPTED) continue
      const at = (base[r] as number) + k++
      for (let f = 0; f < reading.values.length; f++) columns[at + f * length] = reading.values[f] as bigint
    }
    acceptedOfRun[r] = k
  })

  // 4. Spatial consistency, per class, against the state after rule 3 (all bounds first, then verdicts).
  for (const rules of environmentClasses(blueprint)) {
    const members: number[] = []
    const located: SpatialDevice[] = []
    runs.forEach((run, r) => {
      const count = acceptedOfRun[r] as number
      if (runRules[r]?.id !== rules.id || count === 0) return
      const length = run.end - run.start
      const medians = rules.fields.map((_, f) => {
        const from = (base[r] as number) + f * length
        return lowerMedian(columns.subarray(from, from + count))
      })
      members.push(r)
      located.push({ cell: (devices.get(run.device) as DeviceRecord).h3Cell, medians })
    })
    const bounds = computeSpatialBounds(located, rules.quality.spatial)
    members.forEach((r, m) => {
      const bound = bounds[m]
      if (bound === undefined) return
      const run = runs[r] as (typeof runs)[number]
      const length = run.end - run.start
      // |value − center| > threshold ⇔ value outside [center − threshold, center + threshold]
      const low = bound.center.map((c, f) => c - (bound.threshold[f] as bigint))
      const high = bound.center.map((c, f) => c + (bound.threshold[f] as bigint))
      let k = 0
      for (let i = run.start; i < run.end; i++) {
        if (verdicts[i] !== ACCEPTED) continue
        const at = (base[r] as number) + k++
        for (let f = 0; f < low.length; f++) {
          const value = columns[at + f * length] as bigint
          if (value < (low[f] as bigint) || value > (high[f] as bigint)) {
            verdicts[i] = codes.SPATIAL_OUTLIER
            break
          }
        }
      }
    })
  }

  // 5. Each device's quality (accepted of submitted) and uptime (accepted of expected), floored.
  return runs.map((run) => {
    const record = devices.get(run.device)
    if (record === undefined) return {}
    let accepted = 0
    for (let i = run.start; i < run.end; i++) if (verdicts[i] === ACCEPTED) accepted++
    const submitted = run.end - run.start
    const expected = environmentClassOf(blueprint, record.deviceClass)?.quality.expectedReadingsPerEpoch
    const qualityBps = Number((BigInt(accepted) * 10_000n) / BigInt(submitted))
    const uptimeBps =
      expected === undefined ? 0 : Math.min(10_000, Number((BigInt(accepted) * 10_000n) / BigInt(expected)))
    return { qualityBps, uptimeBps }
  })
}

/** A device's share of the device pool: accepted × qualityBps. */
export function environmentWeight(device: DeviceUnits): bigint {
  return BigInt(device.accepted) * BigInt(device.units.qualityBps ?? 0)
}

/** Rule 2 past the registry: schema, ranges, epoch window (widened back for late batches: recordsFrom). */
function judgeContent(
  reading: SignedReading,
  rules: DeviceClassRules | undefined,
  window: { recordsFrom: bigint; epochEnd: bigint },
  codes: Codes,
): number {
  // A class the blueprint does not define has no schema a reading could match.
  if (rules === undefined || reading.values.length !== rules.fields.length) return codes.SCHEMA_MISMATCH
  for (let f = 0; f < rules.fields.length; f++) {
    const field = rules.fields[f] as DeviceClassRules['fields'][number]
    const value = reading.values[f] as bigint
    if (value < field.min || value > field.max) return codes.OUT_OF_RANGE
  }
  if (reading.time < window.recordsFrom || reading.time >= window.epochEnd) return codes.OUTSIDE_EPOCH
  return ACCEPTED
}

/**
 * Rule 3 for one device: called on its readings that passed rule 2, in seq order, it returns each one's verdict.
 * - SEQUENCE_NOT_INCREASING unless its time is above the time of every earlier one of them (time
 *   strictly increases with seq; an earlier reading counts even if rule 3 rejected it);
 * - RATE_LIMITED when less than minIntervalSeconds after the last reading accepted so far;
 * - STUCK_VALUE when its values equal those of each of the last (stuckWindow − 1) readings accepted
 *   so far: the stuckWindow-th identical reading in a row is the first rejected.
 */
function sequenceJudge(quality: Quality, codes: Codes): (reading: SignedReading) => number {
  let latestTime: bigint | undefined
  let lastAcceptedTime: bigint | undefined
  const window = quality.stuckWindow - 1
  /** Values of the last `window` readings accepted, oldest first. */
  const recent: (readonly bigint[])[] = []
  return (reading) => {
    const { time, values } = reading
    let code = ACCEPTED
    if (latestTime !== undefined && time <= latestTime) code = codes.SEQUENCE_NOT_INCREASING
    else if (lastAcceptedTime !== undefined && time - lastAcceptedTime < quality.minIntervalSeconds)
      code = codes.RATE_LIMITED
    else if (recent.length === window && recent.every((previous) => sameValues(previous, values)))
      code = codes.STUCK_VALUE
    if (latestTime === undefined || time > latestTime) latestTime = time
    if (code === ACCEPTED) {
      lastAcceptedTime = time
      recent.push(values)
      if (recent.length > window) recent.shift()
    }
    return code
  }
}

function sameValues(a: readonly bigint[], b: readonly bigint[]): boolean {
  for (let f = 0; f < b.length; f++) if (a[f] !== b[f]) return false
  return true
}
