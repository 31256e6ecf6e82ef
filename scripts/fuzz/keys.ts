/**
 * Keys for the fuzzer, signing with libsecp256k1 directly (the `secp256k1` package's native
 * addon), so that a million inputs can carry fresh, genuinely signed items: viem's pure-JS
 * signing would take a millisecond or more each.
 */
import { createRequire } from 'node:module'
import { type Address, bytesToHex, getAddress, type Hex, hexToBytes } from 'viem'
import type { Keccak256 } from '../../src/crypto/keccak.ts'
import type { DigestSigner } from '../../src/readings/signGatewayVerdict.ts'

type Secp256k1 = {
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  ecdsaRecover(signature: Uint8Array, recid: number, message: Uint8Array, compressed: boolean): Uint8Array
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array
}
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1

/** The secp256k1 group order, and half of it: a larger s is the malleated twin of a signature. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const HALF_N = N >> 1n

export type FuzzKey = { secret: Uint8Array; address: Address }

/** A key derived from a label (the same label, the same key: runs replay with their seed). */
export function fuzzKey(keccak: Keccak256, label: string): FuzzKey {
  const secret = keccak(new TextEncoder().encode(`depin fuzz key ${label}`))
  const publicKey = secp256k1.publicKeyCreate(secret, false)
  return { secret, address: getAddress(bytesToHex(keccak(publicKey.subarray(1)).subarray(12))) }
}

/** A 65-byte r‖s‖v signature (v 27/28, low s) of a 32-byte digest. */
export function signDigest(key: FuzzKey, digest: Uint8Array): Hex {
  const { signature, recid } = secp256k1.ecdsaSign(digest, key.secret)
  const out = new Uint8Array(65)
  out.set(signature)
  out[64] = 27 + recid
  return bytesToHex(out)
}

/** A `DigestSigner` (the gateway operator's key) that signs natively. */
export function digestSigner(key: FuzzKey): DigestSigner {
  return { address: key.address, sign: async ({ hash }) => signDigest(key, hexToBytes(hash)) }
}

/** The high-s twin of a signature: the same signer recovers from it, but no verifier should take it. */
export function malleate(signature: Hex): Hex {
  const bytes = hexToBytes(signature)
  const s = BigInt(bytesToHex(bytes.subarray(32, 64)))
  const twin = hexToBytes(`0x${(N - s).toString(16).padStart(64, '0')}`)
  bytes.set(twin, 32)
  bytes[64] =
    (bytes[64] as number) === 27 ? 28 : (bytes[64] as number) === 28 ? 27 : (bytes[64] as number) ^ 1
  return bytesToHex(bytes)
}

/**
 * Recovers, by the rules every depin verifier applies (low s; v 27/28, or 0/1 where `allowRawV`),
 * the lower-case address that made a 65-byte signature of `digest`; undefined when it does not.
 */
export type StrictRecovery = (digest: Uint8Array, signature: string, allowRawV: boolean) => string | undefined

export function createStrictRecovery(keccak: Keccak256): StrictRecovery {
  return (digest, signature, allowRawV) => {
    if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return undefined
    const bytes = hexToBytes(signature as Hex)
    const v = bytes[64] as number
    const recid = v === 27 || v === 28 ? v - 27 : allowRawV && (v === 0 || v === 1) ? v : -1
    if (recid < 0) return undefined
    const r = BigInt(bytesToHex(bytes.subarray(0, 32)))
    const s = BigInt(bytesToHex(bytes.subarray(32, 64)))
    if (r === 0n || s === 0n || r >= N || s > HALF_N) return undefined
    try {
      const publicKey = secp256k1.ecdsaRecover(bytes.subarray(0, 64), recid, digest, false)
      return bytesToHex(keccak(publicKey.subarray(1)).subarray(12))
    } catch {
      return undefined
    }
  }
}
