/**
 * The signed reading: what a device says it measured, EIP-712 typed data
 * `Reading(address device,uint64 seq,uint64 time,int64[] values)` in the DeviceRegistry's domain
 * (name "depin", version "1", chainId, verifyingContract = DeviceRegistry). Values are the
 * blueprint's fields as fixed-point integers, in the blueprint's order. Sequence numbers strictly
 * increase per device.
 */
import type { Address, Hex } from 'viem'
import { z } from 'zod'
import { isArrayKind, MAX_RECORD_VALUES, type RecordKind, recordValuesProblem } from './recordKinds.ts'

/**
 * A record of any of a use case's kinds (src/readings/recordKinds.ts): `kind` is its index in the
 * use case's `recordKinds`, absent for the first (the environment's Reading); `values` are the
 * kind's field values in order.
 */
export type Reading = { device: Address; seq: bigint; time: bigint; values: bigint[]; kind?: number }
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

/**
 * The JSON wire form of a record of one of `kinds`: as a reading, plus `kind` (its name; default
 * the first kind), each value checked against the kind's field types. The output's `kind` is the
 * kind's index, left out for the first.
 */
export function recordJsonSchema(kinds: readonly RecordKind[]) {
  const names = kinds.map((k) => k.name)
  return z
    .object({
      kind: z
        .string()
        .refine((name) => names.includes(name), `one of ${names.join(', ')}`)
        .optional(),
      device: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 20-byte 0x address'),
      seq: uint64,
      time: uint64,
      values: z.array(z.union([z.string().max(80), z.number()])).max(MAX_RECORD_VALUES),
      signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte 0x signature'),
    })
    .superRefine((record, ctx) => {
      const kind = kinds[record.kind === undefined ? 0 : names.indexOf(record.kind)]
      if (!kind) return
      // each value as its field's type is written: canonical decimal, 0x hex for bytes32 only
      for (const [i, value] of record.values.entries()) {
        const type = isArrayKind(kind) ? 'int64' : kind.fields[i]?.type
        const ok =
          typeof value === 'number'
            ? Number.isSafeInteger(value)
            : (type === 'bytes32' ? BYTES32_TEXT : INTEGER_TEXT).test(value)
        if (!ok) {
          ctx.addIssue({
            code: 'custom',
            path: ['values', i],
            message:
              type === 'bytes32' ? 'a decimal integer or 0x hex' : 'a decimal integer (no leading zeros)',
          })
          return
        }
      }
      const problem = recordValuesProblem(kind, record.values.map(BigInt))
      if (problem) ctx.addIssue({ code: 'custom', path: ['values'], message: problem })
    })
    .transform(({ kind, values, ...record }): SignedReading => {
      const index = kind === undefined ? 0 : names.indexOf(kind)
      return {
        ...record,
        values: values.map(BigInt),
        device: record.device as Address,
        signature: record.signature as Hex,
        ...(index > 0 ? { kind: index } : {}),
      }
    })
}

/** A record's integer value in canonical decimal. */
const INTEGER_TEXT = /^(0|-?[1-9]\d{0,77})$/
/** A bytes32 value: canonical decimal, or 0x hex of at most 32 bytes. */
const BYTES32_TEXT = /^(0|[1-9]\d{0,77}|0x[0-9a-fA-F]{1,64})$/

export type SignedReadingJson = {
  /** The record's kind by name, for any kind but a use case's first. */
  kind?: string
  device: Address
  seq: string
  time: string
  values: string[]
  signature: Hex
}

/** The JSON wire form of a record of one of `kinds`: as a reading's, naming its kind unless it is the first. */
export function toRecordJson(reading: SignedReading, kinds: readonly RecordKind[]): SignedReadingJson {
  const kind = reading.kind ? kinds[reading.kind]?.name : undefined
  if (reading.kind && !kind) throw new RangeError(`no record kind ${reading.kind}`)
  return { ...(kind ? { kind } : {}), ...toReadingJson(reading) }
}

/** The JSON wire form of a signed reading (a record of the first kind; see toRecordJson). */
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
