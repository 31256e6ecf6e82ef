import { type Address, hexToBytes, keccak256, toBytes } from 'viem'
import { depinDomain } from '../chain/typedData.ts'
import { hashDomain } from '../crypto/hashDomain.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import type { Reading } from './reading.ts'
import {
  isArrayKind,
  READING_KIND,
  type RecordKind,
  recordTypeString,
  recordValuesProblem,
} from './recordKinds.ts'

const INT64_MIN = -(1n << 63n)
const INT64_MAX = (1n << 63n) - 1n

/** Computes a record's EIP-712 digest (what the device signs) as 32 bytes. */
export type ReadingHasher = (reading: Reading) => Uint8Array

/**
 * The fast path of EIP-712 hashing for records of the given kinds (default the environment's
 * Reading): type hashes and the domain separator are computed once, the struct is encoded into a
 * reused buffer and hashed with hash-wasm's keccak. Equal to viem's `hashTypedData` (a test checks
 * it) at ≈ 7× its speed. A record's `kind` indexes `kinds` (absent: the first).
 * @param chainId the chain of the DeviceRegistry
 * @param deviceRegistry the verifying contract of records
 */
export async function createReadingHasher(
  chainId: number,
  deviceRegistry: Address,
  kinds: readonly RecordKind[] = [READING_KIND],
): Promise<ReadingHasher> {
  const keccak = await loadKeccak256()
  const domainSeparator = hashDomain(depinDomain(chainId, deviceRegistry))
  const envelope = new Uint8Array(2 + 32 + 32)
  envelope[0] = 0x19
  envelope[1] = 0x01
  envelope.set(domainSeparator, 2)
  const layouts = kinds.map((kind) => {
    const words = isArrayKind(kind) ? 1 : kind.fields.length
    const struct = new Uint8Array((4 + words) * 32)
    struct.set(hexToBytes(keccak256(toBytes(recordTypeString(kind)))), 0)
    return { kind, array: isArrayKind(kind), struct, view: new DataView(struct.buffer) }
  })
  let values = new Uint8Array(32 * 8)
  let valuesView = new DataView(values.buffer)

  // Callers pass records with uint64 seq and time (the wire schema checks them; DataView would wrap
  // a wider bigint silently); values outside their kind's types throw a RangeError here rather
  // than being hashed wrongly.
  return (reading) => {
    const layout = layouts[reading.kind ?? 0]
    if (!layout) throw new RangeError(`no record kind ${reading.kind}`)
    const { struct, view } = layout
    struct.fill(0, 32)
    struct.set(hexToBytes(reading.device), 32 + 12)
    view.setBigUint64(64 + 24, reading.seq)
    view.setBigUint64(96 + 24, reading.time)
    const n = reading.values.length
    if (layout.array) {
      if (values.length < n * 32) {
        values = new Uint8Array(n * 32)
        valuesView = new DataView(values.buffer)
      }
      for (let i = 0; i < n; i++) {
        const v = reading.values[i] as bigint
        if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`value ${i} is out of int64 range`)
        // an int64 widened to int256: sign-extend into the upper 24 bytes
        values.fill(v < 0n ? 0xff : 0, i * 32, i * 32 + 24)
        valuesView.setBigInt64(i * 32 + 24, v)
      }
      struct.set(keccak(values.subarray(0, n * 32)), 128)
    } else {
      const problem = recordValuesProblem(layout.kind, reading.values)
      if (problem) throw new RangeError(problem)
      layout.kind.fields.forEach((field, i) => {
        const v = reading.values[i] as bigint
        const at = 128 + i * 32
        if (field.type === 'bytes32') {
          for (let w = 0; w < 4; w++)
            view.setBigUint64(at + 24 - w * 8, (v >> BigInt(64 * w)) & 0xffff_ffff_ffff_ffffn)
        } else if (field.type === 'int64' || field.type === 'int32') {
          struct.fill(v < 0n ? 0xff : 0, at, at + 24)
          view.setBigInt64(at + 24, v)
        } else view.setBigUint64(at + 24, v)
      })
    }
    envelope.set(keccak(struct), 34)
    return keccak(envelope)
  }
}
