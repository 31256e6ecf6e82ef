import { createRequire } from 'node:module'
import { bytesToHex, getAddress, type Hex, hexToBytes } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'

type Secp256k1Native = {
  ecdsaRecover(signature: Uint8Array, recid: number, message: Uint8Array, compressed: boolean): Uint8Array
}

// libsecp256k1 through the `secp256k1` package's prebuilt native addon (≈ 20× pure JS). Loading
// the bindings directly means a missing addon fails here, loudly, instead of silently falling
// back to the package's pure-JS implementation.
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1Native

/** A 65-byte signature as 0x hex, either case. */
export const SIGNATURE_HEX = /^0x[0-9a-fA-F]{130}$/
/** secp256k1's n / 2, big-endian: a larger s is the malleable twin of a valid signature. */
const HALF_N = Buffer.from('7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0', 'hex')

export type RecoverSignerResult =
  | { type: 'recovered'; address: Hex }
  | { type: 'invalid'; reason: 'SIGNATURE_MALFORMED' | 'SIGNATURE_MALLEABLE' | 'SIGNATURE_INVALID' }

/**
 * Recovers the lower-case address that signed a 32-byte digest with a 65-byte r‖s‖v signature.
 * High-s signatures are refused (malleable: the same signer could produce a second valid form),
 * like OpenZeppelin's ECDSA on-chain. v may be 27/28 or 0/1.
 */
export function recoverSigner(keccak: Keccak256, digest: Uint8Array, signature: Hex): RecoverSignerResult {
  if (!SIGNATURE_HEX.test(signature)) return { type: 'invalid', reason: 'SIGNATURE_MALFORMED' }
  const recovered = recoverSignerBytes(keccak, digest, hexToBytes(signature))
  return recovered instanceof Uint8Array
    ? { type: 'recovered', address: bytesToHex(recovered) }
    : { type: 'invalid', reason: recovered }
}

/**
 * recoverSigner on a signature already in bytes (65: r ‖ s ‖ v): the signer's 20 address bytes,
 * or why there is none. For a caller holding bytes (the signature check workers), no hex.
 */
export function recoverSignerBytes(
  keccak: Keccak256,
  digest: Uint8Array,
  signature: Uint8Array,
): Uint8Array | 'SIGNATURE_MALFORMED' | 'SIGNATURE_MALLEABLE' | 'SIGNATURE_INVALID' {
  const v = signature[64] as number
  const recid = v >= 27 ? v - 27 : v
  if (recid !== 0 && recid !== 1) return 'SIGNATURE_MALFORMED'
  if (Buffer.compare(signature.subarray(32, 64), HALF_N) > 0) return 'SIGNATURE_MALLEABLE'
  let publicKey: Uint8Array
  try {
    publicKey = secp256k1.ecdsaRecover(signature.subarray(0, 64), recid, digest, false)
  } catch {
    return 'SIGNATURE_INVALID'
  }
  return keccak(publicKey.subarray(1)).subarray(12)
}

/** The checksummed form of a recovered address. */
export const checksum = (address: Hex) => getAddress(address)
