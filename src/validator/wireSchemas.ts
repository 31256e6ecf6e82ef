/** zod pieces of the JSON that validators exchange: hex in lower case, bigints as decimal strings. */
import { getAddress, type Hex } from 'viem'
import { z } from 'zod'

export const UINT64_MAX = (1n << 64n) - 1n
export const UINT256_MAX = (1n << 256n) - 1n

/** An unsigned integer as a decimal string, at most `max`. */
export const decimal = (max: bigint, what: string) =>
  z
    .string()
    .regex(/^\d{1,78}$/, 'an unsigned integer as a decimal string')
    .transform((v) => BigInt(v))
    .refine((v) => v <= max, `out of ${what} range`)

export const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, 'a 32-byte 0x hex string')
  .transform((v) => v.toLowerCase() as Hex)

/** An address, checksummed. */
export const addressHex = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'a 20-byte 0x address')
  .transform((v) => getAddress(v.toLowerCase()))

export const signatureHex = z
  .string()
  .regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte 0x signature')
  .transform((v) => v.toLowerCase() as Hex)
