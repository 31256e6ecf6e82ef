import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import type { Address, Hex, PublicClient } from 'viem'
import { epochManagerAbi } from '../chain/generated/contracts.ts'
import {
  RECEIPT_LEAF_TYPES,
  type ReceiptJson,
  receiptFromJson,
  receiptLeafValues,
} from '../rewards/receiptsTree.ts'
import type { UseCase } from '../usecases/useCase.ts'

/** A receipt as `/v1/devices/:device/receipts` serves it. */
export type ProvenReceiptJson = {
  epoch: string
  receipt: ReceiptJson
  proof: Hex[]
  receiptsRoot: Hex
  explanation: string
  /** The receipt's rejections by reason name, the reasons with none left out. */
  rejectedByReason: Record<string, number>
}

export type VerifyProvenReceiptsParameters = {
  receipts: readonly ProvenReceiptJson[]
  /** The device asked for: every receipt must be its own. */
  device: Address
  publicClient: PublicClient
  epochManager: Address
  /** Where to look for ReportAccepted events (the deployment's first block). */
  fromBlock: bigint
  /** The network's use case, to recompute the weight from the receipt's counts and units. */
  useCase: UseCase
}

/**
 * Checks receipts from an API without trusting it: each proof must lead, as OpenZeppelin's
 * StandardMerkleTree verifies it, to the receipts root of the epoch's ReportAccepted event (read
 * from the chain); and the numbers must hold together: rejections add up to submitted − accepted,
 * the use case's weighting of its counts and units gives its weight, and its reward is
 * floor(devicePool × weight / totalWeight).
 * @returns the receipts that fail, with why; empty when every one holds
 */
export async function verifyProvenReceipts(
  parameters: VerifyProvenReceiptsParameters,
): Promise<{ receipt: ProvenReceiptJson; why: string }[]> {
  const { publicClient, epochManager, useCase } = parameters
  const roots = new Map<string, Promise<Hex | undefined>>()
  const rootOf = (epoch: string) => {
    if (!roots.has(epoch)) {
      roots.set(
        epoch,
        publicClient
          .getContractEvents({
            address: epochManager,
            abi: epochManagerAbi,
            eventName: 'ReportAccepted',
            args: { epoch: BigInt(epoch) },
            fromBlock: parameters.fromBlock,
            toBlock: 'latest',
          })
          .then((logs) => logs[0]?.args.receiptsRoot),
      )
    }
    return roots.get(epoch) as Promise<Hex | undefined>
  }
  const failed: { receipt: ProvenReceiptJson; why: string }[] = []
  for (const proven of parameters.receipts) {
    const why = await problemOf(proven)
    if (why) failed.push({ receipt: proven, why })
  }
  return failed

  async function problemOf(proven: ProvenReceiptJson): Promise<string | undefined> {
    const receipt = receiptFromJson(proven.receipt)
    if (receipt.device.toLowerCase() !== parameters.device.toLowerCase())
      return `the receipt is of device ${receipt.device}`
    if (receipt.epoch.toString() !== proven.epoch) return `the receipt is of epoch ${receipt.epoch}`
    const root = await rootOf(proven.epoch)
    if (!root) return `epoch ${proven.epoch} has no report on-chain`
    if (!StandardMerkleTree.verify(root, [...RECEIPT_LEAF_TYPES], receiptLeafValues(receipt), proven.proof))
      return `not in the receipts root of epoch ${proven.epoch} on-chain (${root})`
    const rejected = receipt.rejected.reduce((a, b) => a + b, 0)
    if (receipt.accepted > receipt.submitted || rejected !== receipt.submitted - receipt.accepted)
      return `${receipt.submitted} submitted, ${receipt.accepted} accepted and ${rejected} rejected do not add up`
    const units = Object.fromEntries(
      useCase.unitNames.map((name, j) => [name, Number(receipt.units[j] ?? 0n)]),
    )
    const weight = useCase.weight({ submitted: receipt.submitted, accepted: receipt.accepted, units })
    if (weight !== receipt.weight) return `its weight is ${receipt.weight}, its numbers give ${weight}`
    const reward =
      receipt.totalWeight === 0n ? 0n : (receipt.devicePool * receipt.weight) / receipt.totalWeight
    if (reward !== receipt.reward) return `its reward is ${receipt.reward}, its numbers give ${reward}`
    return undefined
  }
}
