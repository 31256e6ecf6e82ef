import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { hexToBytes, keccak256, toBytes, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { buildReadingsTree, EMPTY_READINGS_ROOT } from './readingsTree.ts'

const digestsOf = (count: number, seed: string) =>
  Array.from({ length: count }, (_, i) => keccak256(toHex(`${seed}:${i}`)))

describe('buildReadingsTree matches StandardMerkleTree.of(digests.map((d) => [d]), ["bytes32"])', () => {
  for (const size of [1, 2, 3, 10, 333]) {
    it(`size ${size}: same root and proofs, from an array or a packed buffer`, async () => {
      const keccak = await loadKeccak256()
      const digests = digestsOf(size, `readings-${size}`)
      const oz = StandardMerkleTree.of(
        digests.map((d) => [d]),
        ['bytes32'],
      )
      const asArray = buildReadingsTree(
        digests.map((d) => hexToBytes(d)),
        keccak,
      )
      const packed = new Uint8Array(size * 32)
      digests.forEach((d, i) => {
        packed.set(hexToBytes(d), i * 32)
      })
      const asBuffer = buildReadingsTree(packed, keccak)
      expect(asArray.root).toBe(oz.root)
      expect(asBuffer.root).toBe(oz.root)
      expect(asArray.size).toBe(size)
      digests.forEach((d, i) => {
        const proof = asArray.getProof(d)
        expect(proof).toEqual(oz.getProof(i))
        expect(asBuffer.getProof(hexToBytes(d))).toEqual(proof)
        expect(StandardMerkleTree.verify(asArray.root, ['bytes32'], [d], proof ?? [])).toBe(true)
      })
      const ozValues = oz.dump()
      for (let p = 0; p < size; p++) {
        const digest = asArray.digestAt(p)
        expect(asBuffer.digestAt(p)).toBe(digest)
        expect(ozValues.tree[ozValues.tree.length - 1 - p]).toBe(oz.leafHash([digest]))
        expect(asArray.getProofAt(p)).toEqual(asArray.getProof(digest))
      }
    })
  }

  it('returns undefined for a digest not in the tree or not 32 bytes', async () => {
    const keccak = await loadKeccak256()
    const tree = buildReadingsTree(
      digestsOf(5, 'absent').map((d) => hexToBytes(d)),
      keccak,
    )
    expect(tree.getProof(keccak256(toHex('other')))).toBeUndefined()
    expect(tree.getProof('0x1234')).toBeUndefined()
    expect(tree.getProof(`0x${'zz'.repeat(32)}`)).toBeUndefined()
    expect(tree.getProof(new Uint8Array(31))).toBeUndefined()
  })

  it('rejects no digests and digests that are not 32 bytes', async () => {
    const keccak = await loadKeccak256()
    expect(() => buildReadingsTree([], keccak)).toThrow(/0 digests/)
    expect(() => buildReadingsTree(new Uint8Array(0), keccak)).toThrow(/0 bytes/)
    expect(() => buildReadingsTree(new Uint8Array(40), keccak)).toThrow(/40 bytes/)
    expect(() => buildReadingsTree([new Uint8Array(32), new Uint8Array(20)], keccak)).toThrow(/#1/)
  })

  it('the empty sentinel is keccak256("depin.readings.empty"), never zero', () => {
    expect(EMPTY_READINGS_ROOT).toBe(keccak256(toBytes('depin.readings.empty')))
    expect(BigInt(EMPTY_READINGS_ROOT)).not.toBe(0n)
  })
})
