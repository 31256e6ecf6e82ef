import type { Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { compareBytes, sortByteKeys } from './sortByteKeys.ts'

/**
 * A Merkle tree in OpenZeppelin's StandardMerkleTree layout, over leaves already hashed: the leaf
 * hashes sorted ascending, sorted leaf `p` at node `2n-2-p`, node `t` = keccak256 of its two
 * children in byte order (`hashPair`), root at node 0, proofs as sibling hashes from leaf to root.
 */
export type MerkleTree = {
  root: Hex
  /** Number of leaves. */
  size: number
  /** Sorted position (0..size-1) of the leaf given at `index` of the input. */
  positionOf(index: number): number
  /** Input index of the leaf at a sorted position. */
  indexAt(position: number): number
  /** Sorted position of a leaf hash (the first of equal ones), or undefined if absent. */
  findLeaf(leafHash: Uint8Array): number | undefined
  /** Proof of the leaf at a sorted position. */
  getProofAt(position: number): Hex[]
  /** The leaf hash at a sorted position. */
  leafHashAt(position: number): Hex
}

const HASH_BYTES = 32
const HASH_WORDS = HASH_BYTES / 4
/** Nodes 0..HEX_CACHE_NODES-1 (the top 16 levels) get their hex string memoized for proofs. */
const HEX_CACHE_NODES = (1 << 16) - 1

/**
 * Builds the tree over `n` leaf hashes packed in one buffer (leaf i at bytes [32i, 32i+32)), the same
 * root, layout and proofs as OpenZeppelin's `StandardMerkleTree` over the leaves these hashes come from.
 * Equal leaf hashes keep their input order (OpenZeppelin's sort is stable too).
 * @param leafHashes n × 32 bytes, n ≥ 1; not modified
 * @param keccak keccak-256, for the inner nodes
 */
export function buildMerkleTree(leafHashes: Uint8Array, keccak: Keccak256): MerkleTree {
  if (leafHashes.length === 0 || leafHashes.length % HASH_BYTES !== 0) {
    throw new Error(
      `Merkle tree leaf hashes: expected a positive multiple of 32 bytes, got ${leafHashes.length}`,
    )
  }
  const n = leafHashes.length / HASH_BYTES
  // An aligned copy when needed, so leaves move as 32-bit words.
  const leaves = leafHashes.byteOffset % 4 === 0 ? leafHashes : leafHashes.slice()
  const leaves32 = new Uint32Array(leaves.buffer, leaves.byteOffset, leaves.length / 4)

  // All 2n-1 nodes in one flat buffer, node t at bytes [32t, 32t+32).
  const treeLength = 2 * n - 1
  const tree = new Uint8Array(treeLength * HASH_BYTES)
  const tree32 = new Uint32Array(tree.buffer)

  const order = sortByteKeys(leaves, HASH_BYTES, n) // order[position] = input index
  const positions = new Uint32Array(n)
  for (let p = 0; p < n; p++) {
    const i = order[p] as number
    positions[i] = p
    const dst = (treeLength - 1 - p) * HASH_WORDS
    const src = i * HASH_WORDS
    for (let k = 0; k < HASH_WORDS; k++) tree32[dst + k] = leaves32[src + k] as number
  }

  // Inner nodes from the end: tree[t] = keccak(sorted(tree[2t+1], tree[2t+2])).
  const pair = new Uint8Array(new ArrayBuffer(2 * HASH_BYTES))
  const pair32 = new Uint32Array(pair.buffer)
  for (let t = n - 2; t >= 0; t--) {
    const left = (2 * t + 1) * HASH_WORDS
    const right = left + HASH_WORDS
    const leftFirst = compareBytes(tree, left * 4, right * 4, HASH_BYTES) <= 0
    const a = leftFirst ? left : right
    const b = leftFirst ? right : left
    for (let k = 0; k < HASH_WORDS; k++) {
      pair32[k] = tree32[a + k] as number
      pair32[HASH_WORDS + k] = tree32[b + k] as number
    }
    tree.set(keccak(pair), t * HASH_BYTES)
  }

  const nodes = Buffer.from(tree.buffer, tree.byteOffset, tree.byteLength)
  // Hex of the top levels is memoized: every proof repeats them (at most HEX_CACHE_NODES strings, ~7 MB).
  const hexCache = new Array<Hex | undefined>(Math.min(treeLength, HEX_CACHE_NODES)).fill(undefined)
  const nodeHex = (t: number): Hex => {
    if (t >= HEX_CACHE_NODES) return `0x${nodes.toString('hex', t * HASH_BYTES, (t + 1) * HASH_BYTES)}`
    let hex = hexCache[t]
    if (hex === undefined) {
      hex = `0x${nodes.toString('hex', t * HASH_BYTES, (t + 1) * HASH_BYTES)}`
      hexCache[t] = hex
    }
    return hex
  }
  const checkPosition = (position: number): void => {
    if (!Number.isInteger(position) || position < 0 || position >= n) {
      throw new RangeError(`Leaf position ${position} is out of range 0..${n - 1}`)
    }
  }

  return {
    root: nodeHex(0),
    size: n,
    positionOf: (index) => {
      if (!Number.isInteger(index) || index < 0 || index >= n) {
        throw new RangeError(`Leaf index ${index} is out of range 0..${n - 1}`)
      }
      return positions[index] as number
    },
    indexAt: (position) => {
      checkPosition(position)
      return order[position] as number
    },
    findLeaf: (leafHash) => {
      if (leafHash.length !== HASH_BYTES) return undefined
      // Sorted position p lives at node treeLength-1-p: binary search for the first p whose hash is ≥ leafHash.
      let lo = 0
      let hi = n
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        const at = (treeLength - 1 - mid) * HASH_BYTES
        let cmp = 0
        for (let k = 0; k < HASH_BYTES && cmp === 0; k++)
          cmp = (tree[at + k] as number) - (leafHash[k] as number)
        if (cmp < 0) lo = mid + 1
        else hi = mid
      }
      if (lo === n) return undefined
      const at = (treeLength - 1 - lo) * HASH_BYTES
      for (let k = 0; k < HASH_BYTES; k++) if (tree[at + k] !== leafHash[k]) return undefined
      return lo
    },
    getProofAt: (position) => {
      checkPosition(position)
      const proof: Hex[] = []
      let t = treeLength - 1 - position
      while (t > 0) {
        proof.push(nodeHex(t % 2 === 1 ? t + 1 : t - 1))
        t = (t - 1) >>> 1
      }
      return proof
    },
    leafHashAt: (position) => {
      checkPosition(position)
      return nodeHex(treeLength - 1 - position)
    },
  }
}
