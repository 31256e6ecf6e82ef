import type { Address, Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import { buildReceiptsTree, type Receipt, type ReceiptsTree } from '../rewards/receiptsTree.ts'
import type { ValidatorStore } from '../validator/validatorStore.ts'

/** A device's receipt for a settled epoch, with its proof against the receipts root the validators signed. */
export type ProvenReceipt = { receipt: Receipt; proof: Hex[]; receiptsRoot: Hex }

/** Receipts trees kept in memory, most recent first: more than one answer can ask for (20). */
const CACHED_TREES = 32

/**
 * Proves devices' receipts against the receipts roots of settled epochs (the ReportAccepted
 * events'). An epoch's tree is rebuilt from the store's receipts and used only when its root is
 * the settled one: a receipt is served with a proof or not at all.
 */
export function createReceiptProver({
  store,
  indexer,
  keccak,
}: {
  store: Pick<ValidatorStore, 'receipts' | 'receiptEpochs'>
  indexer: Pick<IndexerStore, 'getEpoch'>
  keccak: Keccak256
}) {
  type Found = { root: Hex; tree: ReceiptsTree; receipts: Receipt[] } | null
  const trees = new Map<bigint, Found>()

  function treeOf(epoch: bigint): Found {
    const settled = indexer.getEpoch(epoch)
    if (!settled) return null // not settled (yet): nothing to prove against, and not cached
    const cached = trees.get(epoch)
    if (cached !== undefined) return cached
    const receipts = store.receipts(epoch)
    const tree = receipts.length > 0 ? buildReceiptsTree(receipts, keccak) : undefined
    const found = tree && tree.root === settled.receiptsRoot ? { root: tree.root, tree, receipts } : null
    trees.set(epoch, found)
    if (trees.size > CACHED_TREES) trees.delete(trees.keys().next().value as bigint)
    return found
  }

  return {
    /** Every receipt of a settled epoch with its proof, or undefined when it cannot be proven. */
    proveEpoch(epoch: bigint): ProvenReceipt[] | undefined {
      const found = treeOf(epoch)
      if (!found) return undefined
      return found.receipts.map((receipt, index) => ({
        receipt,
        proof: found.tree.proofOf(index),
        receiptsRoot: found.root,
      }))
    },
    /**
     * The device's receipts of the newest `limit` epochs it has one for (before `before` when
     * given), newest first; `unverifiable` names epochs whose receipts cannot be proven (not
     * settled, or settled with a root this store's receipts do not give).
     */
    proveDevice(
      device: Address,
      limit: number,
      before?: bigint,
    ): { receipts: ProvenReceipt[]; unverifiable: string[] } {
      const receipts: ProvenReceipt[] = []
      const unverifiable: string[] = []
      for (const epoch of store.receiptEpochs(device, limit, before)) {
        const found = treeOf(epoch)
        const index = found?.receipts.findIndex((r) => r.device.toLowerCase() === device.toLowerCase()) ?? -1
        if (!found || index < 0) {
          unverifiable.push(epoch.toString())
          continue
        }
        receipts.push({
          receipt: found.receipts[index] as Receipt,
          proof: found.tree.proofOf(index),
          receiptsRoot: found.root,
        })
      }
      return { receipts, unverifiable }
    },
  }
}
