import { type Address, encodeAbiParameters, getAddress, type Hex, hexToBytes, keccak256, toBytes } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { buildMerkleTree } from './merkleTree.ts'

/**
 * A device's receipt for one epoch: what the validators decided about its work, in numbers anyone
 * can recompute. `rejected[i]` counts its readings rejected for the epoch's i-th reason (verdict
 * code i + 1: the pipeline's reasons, then the use case's, as `rejectReasonsOf` lists them);
 * `units[j]` is the use case's j-th unit (its `unitNames`); `reward` is
 * floor(devicePool × weight / totalWeight), the tokens credited to `owner` for this device.
 */
export type Receipt = {
  epoch: bigint
  device: Address
  owner: Address
  submitted: number
  accepted: number
  rejected: readonly number[]
  units: readonly bigint[]
  weight: bigint
  /** Σ weight over the epoch's devices. */
  totalWeight: bigint
  /** The epoch's tokens for devices (emission × deviceShareBps / 10000). */
  devicePool: bigint
  reward: bigint
}

/**
 * The ABI types of a receipt leaf, in Receipt's field order: the tree is OpenZeppelin's
 * `StandardMerkleTree.of(receipts.map(receiptLeafValues), RECEIPT_LEAF_TYPES)`.
 */
export const RECEIPT_LEAF_TYPES = [
  'uint64',
  'address',
  'address',
  'uint32',
  'uint32',
  'uint32[]',
  'int64[]',
  'uint256',
  'uint256',
  'uint256',
  'uint256',
] as const

const RECEIPT_PARAMETERS = RECEIPT_LEAF_TYPES.map((type) => ({ type }))

/**
 * The receipts root of an epoch without a receipt (no registered device sent anything): the
 * report never carries a zero root.
 */
export const EMPTY_RECEIPTS_ROOT: Hex = keccak256(toBytes('depin.receipts.empty'))

/** A receipt's leaf values, as StandardMerkleTree takes them (bigints for the integers). */
export function receiptLeafValues(receipt: Receipt): unknown[] {
  return [
    receipt.epoch,
    receipt.device,
    receipt.owner,
    receipt.submitted,
    receipt.accepted,
    receipt.rejected,
    receipt.units,
    receipt.weight,
    receipt.totalWeight,
    receipt.devicePool,
    receipt.reward,
  ]
}

/** abi.encode of a receipt's leaf values. */
function encodeReceipt(receipt: Receipt): Hex {
  return encodeAbiParameters(
    RECEIPT_PARAMETERS,
    receiptLeafValues(receipt) as Parameters<typeof encodeAbiParameters>[1],
  )
}

/** keccak256(keccak256(abi.encode(leaf))), OpenZeppelin's standard leaf hash. */
export function hashReceiptLeaf(receipt: Receipt, keccak: Keccak256): Uint8Array {
  return keccak(keccak(hexToBytes(encodeReceipt(receipt))))
}

export type ReceiptsTree = {
  root: Hex
  /** The proof of the i-th receipt given. */
  proofOf(index: number): Hex[]
}

/**
 * Builds the tree of an epoch's receipts (≥ 1): same root and proofs as OpenZeppelin's
 * StandardMerkleTree over RECEIPT_LEAF_TYPES.
 */
export function buildReceiptsTree(receipts: readonly Receipt[], keccak: Keccak256): ReceiptsTree {
  if (receipts.length === 0) throw new Error('Cannot build a receipts tree of 0 receipts')
  const leaves = new Uint8Array(receipts.length * 32)
  receipts.forEach((receipt, i) => {
    leaves.set(hashReceiptLeaf(receipt, keccak), i * 32)
  })
  const tree = buildMerkleTree(leaves, keccak)
  return { root: tree.root, proofOf: (index) => tree.getProofAt(tree.positionOf(index)) }
}

/** The receipts root of an epoch's receipts, or EMPTY_RECEIPTS_ROOT when there is none. */
export function receiptsRootOf(receipts: readonly Receipt[], keccak: Keccak256): Hex {
  return receipts.length === 0 ? EMPTY_RECEIPTS_ROOT : buildReceiptsTree(receipts, keccak).root
}

/** A receipt in JSON: integers beyond 2^53 as decimal strings, addresses checksummed. */
export type ReceiptJson = {
  epoch: string
  device: Address
  owner: Address
  submitted: number
  accepted: number
  rejected: number[]
  units: string[]
  weight: string
  totalWeight: string
  devicePool: string
  reward: string
}

export const receiptToJson = (r: Receipt): ReceiptJson => ({
  epoch: r.epoch.toString(),
  device: getAddress(r.device),
  owner: getAddress(r.owner),
  submitted: r.submitted,
  accepted: r.accepted,
  rejected: [...r.rejected],
  units: r.units.map(String),
  weight: r.weight.toString(),
  totalWeight: r.totalWeight.toString(),
  devicePool: r.devicePool.toString(),
  reward: r.reward.toString(),
})

export const receiptFromJson = (r: ReceiptJson): Receipt => ({
  epoch: BigInt(r.epoch),
  device: getAddress(r.device),
  owner: getAddress(r.owner),
  submitted: r.submitted,
  accepted: r.accepted,
  rejected: [...r.rejected],
  units: r.units.map(BigInt),
  weight: BigInt(r.weight),
  totalWeight: BigInt(r.totalWeight),
  devicePool: BigInt(r.devicePool),
  reward: BigInt(r.reward),
})
