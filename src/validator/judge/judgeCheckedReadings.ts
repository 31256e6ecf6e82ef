import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../../crypto/keccak.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { buildMerkleTree } from '../../rewards/merkleTree.ts'
import { EMPTY_READINGS_ROOT } from '../../rewards/readingsTree.ts'
import { useCaseOf } from '../../usecases/registry.ts'
import { ACCEPTED, type UseCase } from '../../usecases/useCase.ts'
import { SIGNATURE_OUTCOMES, type SignatureChecks } from './checkReadingSignatures.ts'
import type { JudgeEpochResult } from './judgeEpoch.ts'
import {
  type DeviceRecord,
  type DeviceScore,
  type JudgedReading,
  type RejectReason,
  rejectReasonsOf,
  type Verdict,
} from './judgement.ts'
import type { OrderReadingsReturnType } from './orderReadings.ts'

export type JudgeCheckedReadingsParameters = {
  blueprint: Blueprint
  /** The use case whose rules judge the epoch; default: the one the blueprint names. */
  useCase?: UseCase
  epochStart: bigint
  epochEnd: bigint
  /** The earliest record time admitted (default epochStart): earlier with late batches (src/validator/lateBatches.ts). */
  recordsFrom?: bigint
  epoch?: bigint
  /** The epoch's randomness (zero when not given). */
  randomness?: `0x${string}`
  network?: { chainId: number; deviceRegistry: `0x${string}` }
  devices: ReadonlyMap<string, DeviceRecord>
  keccak: Keccak256
  /** The batch in canonical order (orderReadings). */
  ordered: OrderReadingsReturnType
  /** The signature checks of ordered.readings, by index. */
  checks: SignatureChecks
}

/** A use case's verdict codes: 0 accepted (so far), 1 + i the i-th of its epoch's reasons. */
type Codes = {
  reasons: readonly RejectReason[]
  codeOf: (reason: string) => number
  /** Signature outcome → verdict code. */
  signature: readonly number[]
  /** The verdict objects, shared: one per code instead of one per reading. */
  verdicts: readonly Verdict[]
}
const codesByUseCase = new WeakMap<UseCase, Codes>()
function codesOf(useCase: UseCase): Codes {
  const known = codesByUseCase.get(useCase)
  if (known) return known
  const reasons = rejectReasonsOf(useCase)
  if (new Set(reasons).size !== reasons.length || reasons.length > 254)
    throw new RangeError(`use case ${useCase.id}: its reasons repeat the pipeline's, or are too many`)
  const codeOf = (reason: string): number => {
    const index = reasons.indexOf(reason)
    if (index < 0) throw new RangeError(`use case ${useCase.id} has no reject reason ${reason}`)
    return index + 1
  }
  const codes: Codes = {
    reasons,
    codeOf,
    signature: SIGNATURE_OUTCOMES.map((outcome) => (outcome === 'VALID' ? ACCEPTED : codeOf(outcome))),
    verdicts: [{ type: 'accepted' }, ...reasons.map((reason) => ({ type: 'rejected' as const, reason }))],
  }
  codesByUseCase.set(useCase, codes)
  return codes
}

/**
 * Judges a batch already in canonical order whose signatures are checked: the pipeline's checks
 * (signature, device registered and active), then the use case's rules over the whole epoch, the
 * scores (its weighting) and the readings root. Shared by judgeEpoch and judgeEpochInParallel,
 * which differ only in where signatures are checked.
 */
export function judgeCheckedReadings(parameters: JudgeCheckedReadingsParameters): JudgeEpochResult {
  const { checks } = parameters
  const rules = judgeRules({ ...parameters, outcomes: checks.outcomes })
  const listed = listJudged(parameters, rules, checks.digests)
  const readingsRoot = readingsRootOf(rules, listed.accepted, checks.leafHashes, parameters.keccak)
  return { ...listed, devices: rules.scores, readingsRoot }
}

/** The verdict code of every reading (by canonical index) and the scores: what the rules decide. */
export type RuleVerdicts = { verdicts: Uint8Array; scores: DeviceScore[] }

/**
 * Steps 1 to 3 of judgeCheckedReadings: verdicts and scores from the signature outcomes alone (an
 * index into SIGNATURE_OUTCOMES per reading), no digest needed. A pure function of its input, so a
 * caller may run it before the signatures are checked, with every outcome VALID, and keep the
 * result when the checks come back all VALID (judgeEpochInParallel does).
 */
export function judgeRules(
  parameters: Omit<JudgeCheckedReadingsParameters, 'checks'> & { outcomes: Uint8Array },
): RuleVerdicts {
  const { devices, ordered, outcomes } = parameters
  const useCase = parameters.useCase ?? useCaseOf(parameters.blueprint)
  const { readings, runs } = ordered
  const codes = codesOf(useCase)
  const verdicts = new Uint8Array(readings.length)
  const DEVICE_UNKNOWN = codes.codeOf('DEVICE_UNKNOWN')
  const DEVICE_RETIRED = codes.codeOf('DEVICE_RETIRED')

  // 1. The pipeline's checks: signature, then the registry as of the epoch's end.
  for (const run of runs) {
    const record = devices.get(run.device)
    for (let i = run.start; i < run.end; i++) {
      let code = codes.signature[outcomes[i] as number] as number
      if (code === ACCEPTED) {
        if (record === undefined) code = DEVICE_UNKNOWN
        else if (record.status !== 'active') code = DEVICE_RETIRED
      }
      verdicts[i] = code
    }
  }

  // 2. The use case's rules, over the epoch's whole input. They decide only what the pipeline
  // left open: a reading it rejected (a forged signature) stays rejected whatever they do.
  const pipeline = verdicts.slice()
  const units = useCase.judge({
    blueprint: parameters.blueprint,
    epochStart: parameters.epochStart,
    epochEnd: parameters.epochEnd,
    recordsFrom: parameters.recordsFrom ?? parameters.epochStart,
    randomness: parameters.randomness ?? `0x${'00'.repeat(32)}`,
    epoch: parameters.epoch ?? 0n,
    network: parameters.network ?? { chainId: 0, deviceRegistry: `0x${'00'.repeat(20)}` },
    keccak: parameters.keccak,
    devices,
    readings,
    runs,
    verdicts,
    code: codes.codeOf,
  })

  for (let i = 0; i < verdicts.length; i++) {
    const code = verdicts[i] as number
    if ((pipeline[i] !== ACCEPTED && code !== pipeline[i]) || code > codes.reasons.length)
      throw new RangeError(
        `use case ${useCase.id} gave reading ${i} verdict code ${code} (the pipeline's was ${pipeline[i]})`,
      )
  }

  // 3. Scores of registered devices, in address order (runs are), weighted by the use case.
  const scores: DeviceScore[] = []
  runs.forEach((run, r) => {
    const record = devices.get(run.device)
    if (record === undefined) return // no owner to score: every reading is DEVICE_UNKNOWN
    let accepted = 0
    const rejected = new Array<number>(codes.reasons.length).fill(0)
    for (let i = run.start; i < run.end; i++) {
      const code = verdicts[i] as number
      if (code === ACCEPTED) accepted++
      else rejected[code - 1] = (rejected[code - 1] as number) + 1
    }
    const measured = units[r] ?? {}
    for (const [name, value] of Object.entries(measured)) {
      if (!useCase.unitNames.includes(name) || !Number.isSafeInteger(value))
        throw new RangeError(`use case ${useCase.id} measured ${record.device}'s ${name} as ${value}`)
    }
    // every unit the use case names, 0 where its rules gave none: what a receipt lists and a
    // verifier hands the weighting again
    const filled: Record<string, number> = {}
    for (const name of useCase.unitNames) filled[name] = measured[name] ?? 0
    const work = { submitted: run.end - run.start, accepted, units: filled }
    const weight = useCase.weight(work)
    if (weight < 0n) throw new RangeError(`use case ${useCase.id} weighed ${record.device} below zero`)
    scores.push({ device: record.device, owner: record.owner, ...work, rejected, weight })
  })

  return { verdicts, scores }
}

/**
 * Where reading p's checks lie in the check buffers: at p (checked in canonical order), or at
 * positions[p] (checked in batch order: positions = ordered.sources).
 */
type Positions = Uint32Array | undefined

/** A judged reading whose digest is cut from the checks' buffer when asked for, not before. */
class Judged implements JudgedReading {
  readonly reading: SignedReading
  readonly verdict: Verdict
  readonly #digests: Uint8Array
  readonly #at: number
  constructor(reading: SignedReading, verdict: Verdict, digests: Uint8Array, at: number) {
    this.reading = reading
    this.verdict = verdict
    this.#digests = digests
    this.#at = at
  }
  get digest(): Uint8Array {
    return this.#digests.subarray(this.#at * 32, this.#at * 32 + 32)
  }
}

/**
 * The judged readings and counts of the rules' verdicts. Reads no digest: `digests` may still be
 * being filled (each reading's is read from it only when asked for).
 */
export function listJudged(
  parameters: Pick<JudgeCheckedReadingsParameters, 'blueprint' | 'useCase' | 'ordered'>,
  rules: RuleVerdicts,
  digests: Uint8Array,
  positions?: Positions,
): Pick<JudgeEpochResult, 'judged' | 'accepted' | 'rejectedByReason'> {
  const { readings } = parameters.ordered
  const { verdicts } = rules
  const codes = codesOf(parameters.useCase ?? useCaseOf(parameters.blueprint))
  const rejectedByReason: Record<RejectReason, number> = Object.fromEntries(
    codes.reasons.map((reason) => [reason, 0]),
  )
  const judged: JudgedReading[] = new Array(readings.length)
  let accepted = 0
  for (let i = 0; i < readings.length; i++) {
    const code = verdicts[i] as number
    if (code === ACCEPTED) accepted++
    else {
      const reason = codes.reasons[code - 1] as RejectReason
      rejectedByReason[reason] = (rejectedByReason[reason] as number) + 1
    }
    judged[i] = new Judged(
      readings[i] as SignedReading,
      codes.verdicts[code] as Verdict,
      digests,
      positions ? (positions[i] as number) : i,
    )
  }
  return { judged, accepted, rejectedByReason }
}

/** The readings tree's root (buildReadingsTree's) from the leaves hashed with the signatures. */
export function readingsRootOf(
  rules: RuleVerdicts,
  accepted: number,
  leafHashes: Uint8Array,
  keccak: Keccak256,
  positions?: Positions,
): `0x${string}` {
  if (accepted === 0) return EMPTY_READINGS_ROOT
  const { verdicts } = rules
  const acceptedLeaves = new Uint8Array(accepted * 32)
  let k = 0
  for (let i = 0; i < verdicts.length; i++) {
    if (verdicts[i] !== ACCEPTED) continue
    const at = (positions ? (positions[i] as number) : i) * 32
    for (let b = 0; b < 32; b++) acceptedLeaves[k * 32 + b] = leafHashes[at + b] as number
    k++
  }
  return buildMerkleTree(acceptedLeaves, keccak).root
}
