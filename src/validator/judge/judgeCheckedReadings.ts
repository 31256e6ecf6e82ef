import type { Blueprint, DeviceClassRules } from '../../blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../../crypto/keccak.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { buildMerkleTree } from '../../rewards/merkleTree.ts'
import { EMPTY_READINGS_ROOT } from '../../rewards/readingsTree.ts'
import { SIGNATURE_OUTCOMES, type SignatureChecks } from './checkReadingSignatures.ts'
import { computeSpatialBounds, type SpatialDevice } from './computeSpatialBounds.ts'
import type { JudgeEpochResult } from './judgeEpoch.ts'
import {
  type DeviceRecord,
  type DeviceScore,
  type JudgedReading,
  REJECT_REASONS,
  type RejectReason,
  type Verdict,
} from './judgement.ts'
import { lowerMedian } from './lowerMedian.ts'
import type { OrderReadingsReturnType } from './orderReadings.ts'

export type JudgeCheckedReadingsParameters = {
  blueprint: Blueprint
  epochStart: bigint
  epochEnd: bigint
  devices: ReadonlyMap<string, DeviceRecord>
  keccak: Keccak256
  /** The batch in canonical order (orderReadings). */
  ordered: OrderReadingsReturnType
  /** The signature checks of ordered.readings, by index. */
  checks: SignatureChecks
}

type Quality = DeviceClassRules['quality']

/** Verdict codes: 0 accepted (so far), 1 + i the i-th REJECT_REASONS. */
const ACCEPTED = 0
const codeOf = (reason: RejectReason): number => REJECT_REASONS.indexOf(reason) + 1
const DEVICE_UNKNOWN = codeOf('DEVICE_UNKNOWN')
const DEVICE_RETIRED = codeOf('DEVICE_RETIRED')
const SCHEMA_MISMATCH = codeOf('SCHEMA_MISMATCH')
const OUT_OF_RANGE = codeOf('OUT_OF_RANGE')
const OUTSIDE_EPOCH = codeOf('OUTSIDE_EPOCH')
const SEQUENCE_NOT_INCREASING = codeOf('SEQUENCE_NOT_INCREASING')
const RATE_LIMITED = codeOf('RATE_LIMITED')
const STUCK_VALUE = codeOf('STUCK_VALUE')
const SPATIAL_OUTLIER = codeOf('SPATIAL_OUTLIER')
/** Signature outcome → verdict code. */
const SIGNATURE_CODES = SIGNATURE_OUTCOMES.map((outcome) =>
  outcome === 'VALID' ? ACCEPTED : codeOf(outcome as RejectReason),
)
/** The verdict objects, shared: one per code instead of one per reading. */
const VERDICTS: readonly Verdict[] = [
  { type: 'accepted' },
  ...REJECT_REASONS.map((reason) => ({ type: 'rejected' as const, reason })),
]

/**
 * Judges a batch already in canonical order whose signatures are checked: rules 2–6 of judgeEpoch
 * (registry, schema, range and epoch; per-device sequence; spatial consistency; scores; readings
 * root). Shared by judgeEpoch and judgeEpochInParallel, which differ only in where signatures are checked.
 */
export function judgeCheckedReadings(parameters: JudgeCheckedReadingsParameters): JudgeEpochResult {
  const { blueprint, devices, ordered, checks } = parameters
  const { readings, runs } = ordered
  const verdicts = new Uint8Array(readings.length)

  // Per device: its class rules if it is registered, active and of a known class, and where its
  // accepted values go. The values of readings accepted by rules 1–3 are copied, device by device and
  // field by field (run r, field f, k-th accepted: columns[base[r] + f × length + k]), into one typed
  // array: rule 4 sorts those columns natively and scans them instead of the scattered reading objects.
  const runRules: (DeviceClassRules | undefined)[] = []
  const base = new Uint32Array(runs.length)
  let columnsLength = 0
  runs.forEach((run, r) => {
    const record = devices.get(run.device)
    const rules = record?.status === 'active' ? blueprint.classById.get(record.deviceClass) : undefined
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
    const judgeSequence = rules === undefined ? undefined : sequenceJudge(rules.quality)
    const length = run.end - run.start
    let k = 0
    for (let i = run.start; i < run.end; i++) {
      const reading = readings[i] as SignedReading
      let code = SIGNATURE_CODES[checks.outcomes[i] as number] as number
      if (code === ACCEPTED) {
        if (record === undefined) code = DEVICE_UNKNOWN
        else if (record.status !== 'active') code = DEVICE_RETIRED
        else code = judgeContent(reading, blueprint.classById.get(record.deviceClass), parameters)
      }
      if (code === ACCEPTED && judgeSequence !== undefined) code = judgeSequence(reading)
      verdicts[i] = code
      if (code !== ACCEPTED) continue
      const at = (base[r] as number) + k++
      for (let f = 0; f < reading.values.length; f++) columns[at + f * length] = reading.values[f] as bigint
    }
    acceptedOfRun[r] = k
  })

  // 4. Spatial consistency, per class, against the state after rule 3 (all bounds first, then verdicts).
  for (const rules of blueprint.deviceClasses) {
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
            verdicts[i] = SPATIAL_OUTLIER
            break
          }
        }
      }
    })
  }

  // 5. Scores of registered devices, in address order (runs are).
  const scores: DeviceScore[] = []
  for (const run of runs) {
    const record = devices.get(run.device)
    if (record === undefined) continue // no owner to score: every reading is DEVICE_UNKNOWN
    let accepted = 0
    for (let i = run.start; i < run.end; i++) if (verdicts[i] === ACCEPTED) accepted++
    const submitted = run.end - run.start
    const expected = blueprint.classById.get(record.deviceClass)?.quality.expectedReadingsPerEpoch
    // Integer division on bigints: exact floors, no floating point.
    const qualityBps = Number((BigInt(accepted) * 10_000n) / BigInt(submitted))
    const uptimeBps =
      expected === undefined ? 0 : Math.min(10_000, Number((BigInt(accepted) * 10_000n) / BigInt(expected)))
    scores.push({
      device: record.device,
      owner: record.owner,
      submitted,
      accepted,
      qualityBps,
      uptimeBps,
      weight: BigInt(accepted) * BigInt(qualityBps),
    })
  }

  // 6. The verdicts, counts and readings root.
  const rejectedByReason = Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<
    RejectReason,
    number
  >
  const judged: JudgedReading[] = []
  let acceptedCount = 0
  for (let i = 0; i < readings.length; i++) {
    const code = verdicts[i] as number
    if (code === ACCEPTED) acceptedCount++
    else rejectedByReason[REJECT_REASONS[code - 1] as RejectReason]++
    judged.push({
      reading: readings[i] as SignedReading,
      digest: checks.digests.subarray(i * 32, i * 32 + 32),
      verdict: VERDICTS[code] as Verdict,
    })
  }
  // The readings tree (buildReadingsTree's) from the leaves hashed with the signatures.
  let readingsRoot = EMPTY_READINGS_ROOT
  if (acceptedCount > 0) {
    const acceptedLeaves = new Uint8Array(acceptedCount * 32)
    let k = 0
    for (let i = 0; i < readings.length; i++) {
      if (verdicts[i] !== ACCEPTED) continue
      acceptedLeaves.set(checks.leafHashes.subarray(i * 32, i * 32 + 32), k * 32)
      k++
    }
    readingsRoot = buildMerkleTree(acceptedLeaves, parameters.keccak).root
  }
  return { judged, devices: scores, accepted: acceptedCount, rejectedByReason, readingsRoot }
}

/** Rule 2 past the registry: schema, ranges, epoch window. */
function judgeContent(
  reading: SignedReading,
  rules: DeviceClassRules | undefined,
  window: { epochStart: bigint; epochEnd: bigint },
): number {
  // A class the blueprint does not define has no schema a reading could match.
  if (rules === undefined || reading.values.length !== rules.fields.length) return SCHEMA_MISMATCH
  for (let f = 0; f < rules.fields.length; f++) {
    const field = rules.fields[f] as DeviceClassRules['fields'][number]
    const value = reading.values[f] as bigint
    if (value < field.min || value > field.max) return OUT_OF_RANGE
  }
  if (reading.time < window.epochStart || reading.time >= window.epochEnd) return OUTSIDE_EPOCH
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
function sequenceJudge(quality: Quality): (reading: SignedReading) => number {
  let latestTime: bigint | undefined
  let lastAcceptedTime: bigint | undefined
  const window = quality.stuckWindow - 1
  /** Values of the last `window` readings accepted, oldest first. */
  const recent: (readonly bigint[])[] = []
  return (reading) => {
    const { time, values } = reading
    let code = ACCEPTED
    if (latestTime !== undefined && time <= latestTime) code = SEQUENCE_NOT_INCREASING
    else if (lastAcceptedTime !== undefined && time - lastAcceptedTime < quality.minIntervalSeconds)
      code = RATE_LIMITED
    else if (recent.length === window && recent.every((previous) => sameValues(previous, values)))
      code = STUCK_VALUE
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
