import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { getAddress, keccak256, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import {
  buildReceiptsTree,
  EMPTY_RECEIPTS_ROOT,
  RECEIPT_LEAF_TYPES,
  type Receipt,
  receiptFromJson,
  receiptLeafValues,
  receiptsRootOf,
  receiptToJson,
} from './receiptsTree.ts'

const address = (label: string) => getAddress(keccak256(toHex(label)).slice(0, 42))

const receiptOf = (i: number): Receipt => ({
  epoch: 41n,
  device: address(`device ${i}`),
  owner: address(`owner ${i % 3}`),
  submitted: 10 + i,
  accepted: 8 + (i % 3),
  rejected: [i % 2, 0, 2, 0],
  // negative and beyond 2^53 values too: int64 is signed
  units: [BigInt(9_000 + i), i % 2 === 0 ? -5n : 2n ** 62n],
  weight: BigInt(i) * 12_345n,
  totalWeight: 987_654_321n,
  devicePool: 450n * 10n ** 18n,
  reward: BigInt(i) * 10n ** 17n + 1n,
})

describe('the receipts tree matches StandardMerkleTree.of(receipts, RECEIPT_LEAF_TYPES)', () => {
  for (const size of [1, 2, 7, 100]) {
    it(`size ${size}: same root, and every proof verifies with OpenZeppelin's library`, async () => {
      const keccak = await loadKeccak256()
      const receipts = Array.from({ length: size }, (_, i) => receiptOf(i))
      const tree = buildReceiptsTree(receipts, keccak)
      const oz = StandardMerkleTree.of(
        receipts.map((r) => receiptLeafValues(r).map((v) => (typeof v === 'bigint' ? v.toString() : v))),
        [...RECEIPT_LEAF_TYPES],
      )
      expect(tree.root).toBe(oz.root)
      expect(receiptsRootOf(receipts, keccak)).toBe(oz.root)
      receipts.forEach((receipt, i) => {
        const proof = tree.proofOf(i)
        expect(
          StandardMerkleTree.verify(oz.root, [...RECEIPT_LEAF_TYPES], receiptLeafValues(receipt), proof),
        ).toBe(true)
        // another receipt's proof does not prove this one
        if (size > 1) {
          const other = tree.proofOf((i + 1) % size)
          expect(
            StandardMerkleTree.verify(oz.root, [...RECEIPT_LEAF_TYPES], receiptLeafValues(receipt), other),
          ).toBe(false)
        }
      })
    })
  }

  it('a changed number does not verify', async () => {
    const keccak = await loadKeccak256()
    const receipts = [receiptOf(1), receiptOf(2), receiptOf(3)]
    const tree = buildReceiptsTree(receipts, keccak)
    const forged = { ...(receipts[0] as Receipt), reward: (receipts[0] as Receipt).reward + 1n }
    expect(
      StandardMerkleTree.verify(
        tree.root,
        [...RECEIPT_LEAF_TYPES],
        receiptLeafValues(forged),
        tree.proofOf(0),
      ),
    ).toBe(false)
  })

  it('has a sentinel root for no receipts, and round-trips JSON', async () => {
    const keccak = await loadKeccak256()
    expect(receiptsRootOf([], keccak)).toBe(EMPTY_RECEIPTS_ROOT)
    expect(() => buildReceiptsTree([], keccak)).toThrow(/0 receipts/)
    const receipt = receiptOf(5)
    expect(receiptFromJson(JSON.parse(JSON.stringify(receiptToJson(receipt))))).toEqual(receipt)
  })
})
