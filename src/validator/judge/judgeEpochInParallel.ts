import { bytesToHex } from 'viem'
import { DepinError } from '../../errors.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { SIGNATURE_OUTCOMES, type SignatureChecks } from './checkReadingSignatures.ts'
import type { SignatureCheckPool } from './createSignatureCheckPool.ts'
import { judgeRules, listJudged, type RuleVerdicts, readingsRootOf } from './judgeCheckedReadings.ts'
import type { JudgeEpochInput, JudgeEpochResult } from './judgeEpoch.ts'
import { orderReadings } from './orderReadings.ts'

const VALID = SIGNATURE_OUTCOMES.indexOf('VALID')

/**
 * judgeEpoch with the signatures checked on a pool of worker threads: the same result, bit for bit,
 * in a fraction of the time on a machine with several cores (signature recovery is most of the
 * work). The workers check the batch as it lies in memory, every job handed out at once; this
 * thread meanwhile puts it in canonical order and runs the use case's rules as if every signature
 * were valid. The rules are a pure function of the outcomes, so when the checks come back all valid
 * (a batch from honest gateways always does: they check every signature) that result is the one
 * the real outcomes give and the rules cost no wall time of their own; otherwise they run again on
 * the real outcomes.
 * @param pool created for the same chain id and DeviceRegistry as input.digest (checked on a sample)
 */
export async function judgeEpochInParallel(
  input: JudgeEpochInput,
  pool: SignatureCheckPool,
): Promise<JudgeEpochResult> {
  const checking = pool.start(input.readings, undefined, { eager: true })
  checking.done.catch(() => {}) // awaited below; a failure while this thread is busy is not unhandled
  const ordered = orderReadings(input.readings)
  const positions = ordered.sources // reading p's checks lie at the batch index it came from
  let speculative: { rules: RuleVerdicts; listed: ReturnType<typeof listJudged> } | undefined
  try {
    const rules = judgeRules({ ...input, ordered, outcomes: new Uint8Array(ordered.readings.length) })
    speculative = {
      rules,
      listed: listJudged({ ...input, ordered }, rules, checking.checks.digests, positions),
    }
  } catch {
    // the real outcomes decide whether this error stands: judged again below
  }
  const checks = await checking.done
  checkDomain(input, checks)
  const outcomes = new Uint8Array(ordered.readings.length)
  let allValid = true
  for (let p = 0; p < outcomes.length; p++) {
    const outcome = checks.outcomes[positions[p] as number] as number
    outcomes[p] = outcome
    if (outcome !== VALID) allValid = false
  }
  let rules: RuleVerdicts
  let listed: ReturnType<typeof listJudged>
  if (allValid && speculative) ({ rules, listed } = speculative)
  else {
    rules = judgeRules({ ...input, ordered, outcomes })
    listed = listJudged({ ...input, ordered }, rules, checks.digests, positions)
  }
  const readingsRoot = readingsRootOf(rules, listed.accepted, checks.leafHashes, input.keccak, positions)
  return { ...listed, devices: rules.scores, readingsRoot }
}

/**
 * The pool hashes in its own domain: a pool for another chain or registry would quietly reject
 * everything as SIGNATURE_INVALID. Compares the first hashable reading's digest with input.digest.
 */
function checkDomain(input: JudgeEpochInput, checks: SignatureChecks): void {
  for (let i = 0; i < input.readings.length; i++) {
    const digest = checks.digests.subarray(i * 32, i * 32 + 32)
    if (digest.every((byte) => byte === 0)) continue // not encodable: nothing was hashed
    const expected = input.digest(input.readings[i] as SignedReading)
    if (bytesToHex(expected) !== bytesToHex(digest)) {
      throw new DepinError(
        'JUDGE_DOMAIN_MISMATCH',
        'the signature check pool hashes readings in another EIP-712 domain than the judge (chain id or DeviceRegistry differ)',
        { details: { expected: bytesToHex(expected), pool: bytesToHex(digest) } },
      )
    }
    return
  }
}
