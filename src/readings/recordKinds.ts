/**
 * Record kinds: what a use case's devices sign. Each kind is an EIP-712 type in the
 * DeviceRegistry's domain, `Kind(address device,uint64 seq,uint64 time,<its fields>)`, so any
 * EIP-712 tool signs it; the shared pipeline carries every kind the same way — a device, a
 * per-device sequence shared by all its kinds, a time, the kind's field values in order, and the
 * signature. The environment's one kind is `Reading(… int64[] values)`; a kind has either one
 * `int64[]` field (its values are the array) or only single-word fields (one value each).
 */
import { numberToHex } from 'viem'

/** The field types a record kind may use: each a 32-byte word, or one int64 array. */
export type RecordFieldType = 'int64[]' | 'uint64' | 'int64' | 'uint32' | 'int32' | 'bytes32'

export type RecordKind = {
  /** The EIP-712 primary type, e.g. "Reading", "Witness". */
  name: string
  /** The fields after device, seq and time, in order. */
  fields: readonly { name: string; type: RecordFieldType }[]
}

/** The environment's reading: `Reading(address device,uint64 seq,uint64 time,int64[] values)`. */
export const READING_KIND: RecordKind = { name: 'Reading', fields: [{ name: 'values', type: 'int64[]' }] }

/** Most values a record carries (an int64 array's length). */
export const MAX_RECORD_VALUES = 32

const RANGES: Record<Exclude<RecordFieldType, 'int64[]'>, [bigint, bigint]> = {
  uint64: [0n, (1n << 64n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  bytes32: [0n, (1n << 256n) - 1n],
}

/** Whether the kind's values are one int64 array (else one value per field). */
export const isArrayKind = (kind: RecordKind) =>
  kind.fields.length === 1 && kind.fields[0]?.type === 'int64[]'

/** Why a kind definition cannot be used, or undefined. */
export function recordKindProblem(kind: RecordKind): string | undefined {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind.name)) return `kind name ${kind.name} is not an EIP-712 type name`
  if (kind.fields.some((f) => f.type === 'int64[]') && !isArrayKind(kind))
    return `kind ${kind.name}: an int64[] field must be its only field`
  if (kind.fields.length === 0 || kind.fields.length > MAX_RECORD_VALUES)
    return `kind ${kind.name} has ${kind.fields.length} fields`
  const names = new Set(['device', 'seq', 'time'])
  for (const field of kind.fields) {
    if (names.has(field.name) || !/^[a-z][A-Za-z0-9]*$/.test(field.name))
      return `kind ${kind.name}: field ${field.name} repeats or is not a name`
    names.add(field.name)
  }
  return undefined
}

/** The kind's EIP-712 types, for viem's signTypedData / hashTypedData and any other tool. */
export function recordTypes(kind: RecordKind): Record<string, { name: string; type: string }[]> {
  return {
    [kind.name]: [
      { name: 'device', type: 'address' },
      { name: 'seq', type: 'uint64' },
      { name: 'time', type: 'uint64' },
      ...kind.fields.map((f) => ({ name: f.name, type: f.type })),
    ],
  }
}

/** The kind's EIP-712 type string, e.g. "Reading(address device,uint64 seq,uint64 time,int64[] values)". */
export function recordTypeString(kind: RecordKind): string {
  return `${kind.name}(address device,uint64 seq,uint64 time,${kind.fields.map((f) => `${f.type} ${f.name}`).join(',')})`
}

/** Why a record's values do not fit its kind (count, ranges), or undefined. */
export function recordValuesProblem(kind: RecordKind, values: readonly bigint[]): string | undefined {
  if (isArrayKind(kind)) {
    if (values.length > MAX_RECORD_VALUES) return `more than ${MAX_RECORD_VALUES} values`
    const [low, high] = RANGES.int64
    const i = values.findIndex((v) => v < low || v > high)
    return i < 0 ? undefined : `value ${i} is out of int64 range`
  }
  if (values.length !== kind.fields.length)
    return `a ${kind.name} carries ${kind.fields.length} values (${kind.fields.map((f) => f.name).join(', ')}), not ${values.length}`
  for (const [i, field] of kind.fields.entries()) {
    const [low, high] = RANGES[field.type as Exclude<RecordFieldType, 'int64[]'>]
    const v = values[i] as bigint
    if (v < low || v > high) return `${field.name} is out of ${field.type} range`
  }
  return undefined
}

/** The kind's EIP-712 message of a record: its values under their field names. */
export function recordMessage(
  kind: RecordKind,
  record: { device: `0x${string}`; seq: bigint; time: bigint; values: readonly bigint[] },
): Record<string, unknown> {
  const message: Record<string, unknown> = { device: record.device, seq: record.seq, time: record.time }
  if (isArrayKind(kind)) message[(kind.fields[0] as { name: string }).name] = [...record.values]
  else
    kind.fields.forEach((field, i) => {
      const v = record.values[i] as bigint
      message[field.name] = field.type === 'bytes32' ? numberToHex(v, { size: 32 }) : v
    })
  return message
}
