import type { Keccak256 } from '../../crypto/keccak.ts'
import type { ReadingHasher } from '../../readings/createReadingHasher.ts'
import { type SignedReading, UINT64_MAX } from '../../readings/reading.ts'
import { recoverSigner, SIGNATURE_HEX } from '../../readings/recoverReadingSigner.ts'
import { hashReadingLeafInto } from '../../rewards/readingsTree.ts'

/** What checking one reading's signature found, as stored in `SignatureChecks.outcomes`. */
export const SIGNATURE_OUTCOMES = [
  'VALID',
  'SIGNATURE_INVALID',
  'SIGNATURE_MALLEABLE',
  'SIGNATURE_MALFORMED',
] as const
export type SignatureOutcome = (typeof SIGNATURE_OUTCOMES)[number]

/** The signature checks of n readings, by index, in flat buffers (they cross thread boundaries as they are). */
export type SignatureChecks = {
  /** Reading i's EIP-712 digest at bytes [32i, 32i + 32); zeros when the reading cannot be encoded. */
  digests: Uint8Array
  /** Reading i's leaf in the readings tree (hashReadingLeafInto of its digest), likewise; hashed here so
   * the work spreads over the worker threads with the signatures. */
  leafHashes: Uint8Array
  /** Reading i's outcome, an index into SIGNATURE_OUTCOMES. */
  outcomes: Uint8Array
}

const VALID = 0
const INVALID = SIGNATURE_OUTCOMES.indexOf('SIGNATURE_INVALID')
const MALFORMED = SIGNATURE_OUTCOMES.indexOf('SIGNATURE_MALFORMED')
const ADDRESS = /^0x[0-9a-fA-F]{40}$/

/**
 * Checks one reading's signature and writes its digest, leaf hash and outcome at `index` of checks.
 * VALID only when the signature recovers, with a low s, to the reading's own device. A reading that
 * cannot be EIP-712 encoded (device not an address, seq or time outside uint64, a value outside
 * its kind's type, an unknown kind) or whose signature is not 65 bytes of hex cannot carry a valid signature: SIGNATURE_MALFORMED.
 */
export function checkReadingSignature(
  reading: SignedReading,
  digest: ReadingHasher,
  keccak: Keccak256,
  checks: SignatureChecks,
  index: number,
): void {
  if (!isEncodable(reading)) {
    checks.outcomes[index] = MALFORMED
    return
  }
  let hash: Uint8Array
  try {
    hash = digest(reading) // throws on values outside their kind's types, or an unknown kind
  } catch {
    checks.outcomes[index] = MALFORMED
    return
  }
  checks.digests.set(hash, index * 32)
  hashReadingLeafInto(keccak, hash, checks.leafHashes, index * 32)
  if (typeof reading.signature !== 'string' || !SIGNATURE_HEX.test(reading.signature)) {
    checks.outcomes[index] = MALFORMED
    return
  }
  const signer = recoverSigner(keccak, hash, reading.signature)
  checks.outcomes[index] =
    signer.type === 'invalid'
      ? SIGNATURE_OUTCOMES.indexOf(signer.reason)
      : signer.address === reading.device.toLowerCase()
        ? VALID
        : INVALID
}

/** Checks every reading's signature on this thread. */
export function checkReadingSignatures(
  readings: readonly SignedReading[],
  digest: ReadingHasher,
  keccak: Keccak256,
): SignatureChecks {
  const checks = {
    digests: new Uint8Array(readings.length * 32),
    leafHashes: new Uint8Array(readings.length * 32),
    outcomes: new Uint8Array(readings.length),
  }
  readings.forEach((reading, i) => {
    checkReadingSignature(reading, digest, keccak, checks, i)
  })
  return checks
}

/** Whether the reading's fields fit their EIP-712 types, so hashing it means what it says. */
export function isEncodable(reading: SignedReading): boolean {
  const { device, seq, time, values } = reading
  if (typeof device !== 'string' || !ADDRESS.test(device)) return false
  if (typeof seq !== 'bigint' || seq < 0n || seq > UINT64_MAX) return false
  if (typeof time !== 'bigint' || time < 0n || time > UINT64_MAX) return false
  if (!Array.isArray(values)) return false
  // each value's range is its kind's (the hasher refuses what does not fit): here only its type
  for (const value of values) if (typeof value !== 'bigint') return false
  return true
}
