/**
 * The signed reading: what a device says it measured, EIP-712 typed data
 * `Reading(address device,uint64 seq,uint64 time,int64[] values)` in the DeviceRegistry's domain
 * (name "depin", version "1", chainId, verifyingContract = DeviceRegistry). Values are the
 * blueprint's fields as fixed-point integers, in the blueprint's order. Sequence numbers strictly
 * increase per device.
 */
import type { Address, Hex } from 'viem'
import { z } from 'zod'

export type Reading = { device: Address; seq: bigint; time: bigint; values: bigint[] }
export type SignedReading = Reading & { signature: Hex }

export const UINT64_MAX = (1n << 64n) - 1n
export const INT64_MIN = -(1n << 63n)
export const INT64_MAX = (1n << 63n) - 1n

const integer = z.union([
  z.string().regex(/^-?\d{1,20}$/, 'an integer as a decimal string'),
  z.number().int().refine(Number.isSafeInteger, 'a safe integer (use a string for larger values)'),
])
const uint64 = integer
  .transform((v) => BigInt(v))
  .refine((v) => v >= 0n && v <= UINT64_MAX, 'out of uint64 range')
const int64 = integer
  .transform((v) => BigInt(v))
  .refine((v) => v >= INT64_MIN && v <= INT64_MAX, 'out of int64 range')

/** The JSON wire form of a signed reading: integers as decimal strings (or safe JSON numbers). */
export const signedReadingJsonSchema = z.object({
  device: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 20-byte 0x address'),
  seq: uint64,
  time: uint64,
  values: z.array(int64).max(32),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte 0x signature'),
})

export type SignedReadingJson = {
  device: Address
  seq: string
  time: string
  values: string[]
  signature: Hex
}

/** The JSON wire form of a signed reading. */
export function toReadingJson(reading: SignedReading): SignedReadingJson {
  return {
    device: reading.device,
    seq: reading.seq.toString(),
    time: reading.time.toString(),
    values: reading.values.map(String),
    signature: reading.signature,
  }
}

/** The EIP-712 types of a reading, for any standard tool (viem, ethers, cast). */
export { readingTypes } from '../chain/typedData.ts'

/** A signed reading from its JSON wire form, as `toReadingJson` wrote it (trusted input: no checks). */
export function fromReadingJson(json: SignedReadingJson): SignedReading {
  return {
    device: json.device,
    seq: BigInt(json.seq),
    time: BigInt(json.time),
    values: json.values.map(BigInt),
    signature: json.signature,
  }
}
