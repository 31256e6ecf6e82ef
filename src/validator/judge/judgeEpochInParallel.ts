import { bytesToHex } from 'viem'
import { DepinError } from '../../errors.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { SignatureCheckPool } from './createSignatureCheckPool.ts'
import { judgeCheckedReadings } from './judgeCheckedReadings.ts'
import type { JudgeEpochInput, JudgeEpochResult } from './judgeEpoch.ts'
import { orderReadings } from './orderReadings.ts'

/**
 * judgeEpoch with the signatures checked on a pool of worker threads: the same result, bit for bit,
 * in a fraction of the time on a machine with several cores (signature recovery is most of the work).
 * @param pool created for the same chain id and DeviceRegistry as input.digest (checked on a sample)
 */
export async function judgeEpochInParallel(
  input: JudgeEpochInput,
  pool: SignatureCheckPool,
): Promise<JudgeEpochResult> {
  const ordered = orderReadings(input.readings)
  const checks = await pool.check(ordered.readings, batchOrder(input.readings.length, ordered.sources))
  // The pool hashes in its own domain: a pool for another chain or registry would quietly reject
  // everything as SIGNATURE_INVALID. Compare the first hashable reading's digest with input.digest.
  for (let i = 0; i < ordered.readings.length; i++) {
    const digest = checks.digests.subarray(i * 32, i * 32 + 32)
    if (digest.every((byte) => byte === 0)) continue // not encodable: nothing was hashed
    const expected = input.digest(ordered.readings[i] as SignedReading)
    if (bytesToHex(expected) !== bytesToHex(digest)) {
      throw new DepinError(
        'JUDGE_DOMAIN_MISMATCH',
        'the signature check pool hashes readings in another EIP-712 domain than the judge (chain id or DeviceRegistry differ)',
        { details: { expected: bytesToHex(expected), pool: bytesToHex(digest) } },
      )
    }
    break
  }
  return judgeCheckedReadings({ ...input, ordered, checks })
}

/** The canonical positions ordered by the readings' places in the batch (the order they arrived, and lie in memory). */
function batchOrder(batchLength: number, sources: Uint32Array): Uint32Array {
  const positionOf = new Int32Array(batchLength).fill(-1)
  sources.forEach((source, p) => {
    positionOf[source] = p
  })
  const order = new Uint32Array(sources.length)
  let k = 0
  for (const p of positionOf) if (p >= 0) order[k++] = p
  return order
}
