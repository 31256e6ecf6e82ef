import type { Hex } from 'viem'

/** secp256k1 group order / 2: a larger s is the malleated twin of a valid signature. */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n

/**
 * What is wrong with a signature's shape as OpenZeppelin's ECDSA accepts it (65 bytes r‖s‖v,
 * v 27 or 28, low s), or undefined when nothing is. Says nothing about who signed.
 */
export function signatureShapeProblem(signature: Hex): string | undefined {
  const hex = signature.toLowerCase()
  if (!/^0x[0-9a-f]{130}$/.test(hex)) return 'the signature is not 65 bytes'
  const v = Number.parseInt(hex.slice(130, 132), 16)
  if (v !== 27 && v !== 28) return `the signature's v is ${v}, not 27 or 28`
  if (BigInt(`0x${hex.slice(66, 130)}`) > HALF_N) return "the signature's s is not low"
  return undefined
}
