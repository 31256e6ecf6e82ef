import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { bytesToHex, hexToBytes, keccak256, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { buildMerkleTree } from './merkleTree.ts'

/** Pseudo-random 32-byte values from a seed; `repeat` makes every k-th one equal to the previous. */
function values(count: number, seed: string, repeatEvery = 0): `0x${string}`[] {
  const out: `0x${string}`[] = []
  for (let i = 0; i < count; i++) {
    const previous = out[i - 1]
    out.push(
      repeatEvery > 0 && i % repeatEvery === 0 && previous !== undefined
        ? previous
        : keccak256(toHex(`${seed}:${i}`)),
    )
  }
  return out
}

describe('buildMerkleTree', () => {
  for (const size of [1, 2, 3, 5, 64, 257]) {
    it(`size ${size}: OpenZeppelin's layout, root and proofs over pre-hashed leaves`, async () => {
      const keccak = await loadKeccak256()
      const leafValues = values(size, `core-${size}`)
      const oz = StandardMerkleTree.of(
        leafValues.map((v) => [v]),
        ['bytes32'],
      )
      const packed = new Uint8Array(size * 32)
      leafValues.forEach((v, i) => {
        packed.set(hexToBytes(oz.leafHash([v]) as `0x${string}`), i * 32)
      })
      const tree = buildMerkleTree(packed, keccak)
      expect(tree.root).toBe(oz.root)
      expect(tree.size).toBe(size)
      const ozNodes = oz.dump().tree
      for (let i = 0; i < size; i++) {
        const position = tree.positionOf(i)
        expect(tree.indexAt(position)).toBe(i)
        expect(tree.leafHashAt(position)).toBe(ozNodes[ozNodes.length - 1 - position])
        expect(tree.getProofAt(position)).toEqual(oz.getProof(i))
        expect(tree.findLeaf(packed.subarray(i * 32, i * 32 + 32))).toBe(position)
      }
      expect(tree.findLeaf(new Uint8Array(32).fill(0xab))).toBeUndefined()
      expect(tree.findLeaf(new Uint8Array(31))).toBeUndefined()
    })
  }

  it('keeps equal leaves in input order, like OpenZeppelin (stable sort)', async () => {
    const keccak = await loadKeccak256()
    const leafValues = values(100, 'dups', 3)
    const oz = StandardMerkleTree.of(
      leafValues.map((v) => [v]),
      ['bytes32'],
    )
    const packed = new Uint8Array(100 * 32)
    leafValues.forEach((v, i) => {
      packed.set(hexToBytes(oz.leafHash([v]) as `0x${string}`), i * 32)
    })
    const tree = buildMerkleTree(packed, keccak)
    expect(tree.root).toBe(oz.root)
    const ozNodes = oz.dump().tree
    for (let p = 0; p < 100; p++) expect(tree.leafHashAt(p)).toBe(ozNodes[ozNodes.length - 1 - p])
  })

  it('accepts a leaf buffer at an unaligned offset and does not modify it', async () => {
    const keccak = await loadKeccak256()
    const backing = new Uint8Array(1 + 7 * 32)
    backing.set(hexToBytes(keccak256(toHex('fill'))), 1)
    for (let i = 1; i < backing.length; i++) backing[i] = (backing[i] ?? 0) ^ (i * 31)
    const leaves = backing.subarray(1)
    const before = bytesToHex(leaves)
    expect(buildMerkleTree(leaves, keccak).root).toBe(buildMerkleTree(leaves.slice(), keccak).root)
    expect(bytesToHex(leaves)).toBe(before)
  })

  it('rejects an empty or ragged leaf buffer and out-of-range positions', async () => {
    const keccak = await loadKeccak256()
    expect(() => buildMerkleTree(new Uint8Array(0), keccak)).toThrow(/multiple of 32/)
    expect(() => buildMerkleTree(new Uint8Array(33), keccak)).toThrow(/multiple of 32/)
    const tree = buildMerkleTree(new Uint8Array(64), keccak)
    expect(() => tree.getProofAt(2)).toThrow(RangeError)
    expect(() => tree.indexAt(-1)).toThrow(RangeError)
    expect(() => tree.positionOf(0.5)).toThrow(RangeError)
  })
})
