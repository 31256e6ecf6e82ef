import { type Address, hexToBytes, keccak256, toBytes } from 'viem'
import { depinDomain } from '../chain/typedData.ts'
import { hashDomain } from '../crypto/hashDomain.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import type { Reading } from './reading.ts'

const READING_TYPEHASH = hexToBytes(
  keccak256(toBytes('Reading(address device,uint64 seq,uint64 time,int64[] values)')),
)

/** Computes a reading's EIP-712 digest (what the device signs) as 32 bytes. */
export type ReadingHasher = (reading: Reading) => Uint8Array

/**
 * The fast path of EIP-712 hashing for readings: the type hash and domain separator are computed
 * once, the struct is encoded into a reused buffer and hashed with hash-wasm's keccak. Equal to
 * viem's `hashTypedData` (a test checks it) at ≈ 7× its speed.
 * @param chainId the chain of the DeviceRegistry
 * @param deviceRegistry the verifying contract of readings
 */
export async function createReadingHasher(chainId: number, deviceRegistry: Address): Promise<ReadingHasher> {
  const keccak = await loadKeccak256()
  const domainSeparator = hashDomain(depinDomain(chainId, deviceRegistry))
  const struct = new Uint8Array(5 * 32)
  struct.set(READING_TYPEHASH, 0)
  const envelope = new Uint8Array(2 + 32 + 32)
  envelope[0] = 0x19
  envelope[1] = 0x01
  envelope.set(domainSeparator, 2)
  const structView = new DataView(struct.buffer)
  let values = new Uint8Array(32 * 8)
  let valuesView = new DataView(values.buffer)

  // Callers pass readings already checked to hold uint64 seq/time and int64 values (the wire
  // schema does); DataView throws a RangeError on anything wider rather than hashing it wrongly.
  return (reading) => {
    const n = reading.values.length
    if (values.length < n * 32) {
      values = new Uint8Array(n * 32)
      valuesView = new DataView(values.buffer)
    }
    for (let i = 0; i < n; i++) {
      const v = reading.values[i] as bigint
      // an int64 widened to int256: sign-extend into the upper 24 bytes
      values.fill(v < 0n ? 0xff : 0, i * 32, i * 32 + 24)
      valuesView.setBigInt64(i * 32 + 24, v)
    }
    struct.fill(0, 32)
    struct.set(hexToBytes(reading.device), 32 + 12)
    structView.setBigUint64(64 + 24, reading.seq)
    structView.setBigUint64(96 + 24, reading.time)
    struct.set(keccak(values.subarray(0, n * 32)), 128)
    envelope.set(keccak(struct), 34)
    return keccak(envelope)
  }
}
