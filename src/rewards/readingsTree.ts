import { type Hex, hexToBytes, keccak256, toBytes } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { buildMerkleTree } from './merkleTree.ts'

/**
 * The tree of an epoch's accepted readings: OpenZeppelin's StandardMerkleTree over ['bytes32'] of
 * the readings' EIP-712 digests, so anyone proves a reading was accepted with `getProof(digest)`
 * against the readings root the chain stores per epoch.
 */
export type ReadingsTree = {
  root: Hex
  size: number
  /** Proof for a reading digest (32 bytes or 0x hex), or undefined if it is not in the tree. */
  getProof(digest: Uint8Array | Hex): Hex[] | undefined
  /** Proof by sorted leaf position 0..size-1. */
  getProofAt(position: number): Hex[]
  /** The digest at a sorted leaf position. */
  digestAt(position: number): Hex
}

/**
 * The readings root of an epoch with no accepted reading: the EpochManager never accepts a zero
 * root, so such an epoch commits to this sentinel.
 */
export const EMPTY_READINGS_ROOT: Hex = keccak256(toBytes('depin.readings.empty'))

const HASH_BYTES = 32
const DIGEST_HEX = /^0x[0-9a-fA-F]{64}$/

/** Scratch for the inner hash, ArrayBuffer-backed so hash-wasm reads it without moving it off-heap. */
const innerLeafHash = new Uint8Array(new ArrayBuffer(HASH_BYTES))

/**
 * The leaf of a reading digest, keccak256(keccak256(abi.encode(bytes32 digest))) (abi.encode of a
 * bytes32 is the 32 bytes themselves), written into out at offset.
 */
export function hashReadingLeafInto(
  keccak: Keccak256,
  digest: Uint8Array,
  out: Uint8Array,
  offset: number,
): void {
  innerLeafHash.set(keccak(digest))
  out.set(keccak(innerLeafHash), offset)
}

/**
 * Builds the readings tree: same root, layout and proofs as
 * `StandardMerkleTree.of(digests.map((d) => [d]), ['bytes32'])`.
 * @param digests the 32-byte digests, as an array or packed in one buffer (n × 32 bytes), n ≥ 1
 * @param keccak keccak-256 (see loadKeccak256)
 */
export function buildReadingsTree(
  digests: readonly Uint8Array[] | Uint8Array,
  keccak: Keccak256,
): ReadingsTree {
  const packed = digests instanceof Uint8Array
  const n = packed ? digests.length / HASH_BYTES : digests.length
  if (n === 0 || !Number.isInteger(n)) {
    throw new Error(`Cannot build a readings tree from ${packed ? `${digests.length} bytes` : '0 digests'}`)
  }
  const leafHashes = new Uint8Array(n * HASH_BYTES)
  for (let i = 0; i < n; i++) {
    const digest = packed ? digests.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES) : digests[i]
    if (!(digest instanceof Uint8Array) || digest.length !== HASH_BYTES) {
      throw new Error(`Reading digest #${i} is not 32 bytes`)
    }
    hashReadingLeafInto(keccak, digest, leafHashes, i * HASH_BYTES)
  }
  const tree = buildMerkleTree(leafHashes, keccak)
  const digestAt = (position: number): Hex => {
    const i = tree.indexAt(position)
    const digest = packed
      ? digests.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)
      : (digests[i] as Uint8Array)
    return `0x${Buffer.from(digest.buffer, digest.byteOffset, HASH_BYTES).toString('hex')}`
  }
  const lookup = new Uint8Array(HASH_BYTES)
  return {
    root: tree.root,
    size: n,
    getProof: (digest) => {
      if (typeof digest === 'string' && !DIGEST_HEX.test(digest)) return undefined
      const bytes = typeof digest === 'string' ? hexToBytes(digest) : digest
      if (bytes.length !== HASH_BYTES) return undefined
      hashReadingLeafInto(keccak, bytes, lookup, 0)
      const position = tree.findLeaf(lookup)
      return position === undefined ? undefined : tree.getProofAt(position)
    },
    getProofAt: tree.getProofAt,
    digestAt,
  }
}
