import { type Hex, hexToBytes } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import { type SignedReadingJson, toRecordJson } from '../readings/reading.ts'
import { READING_KIND, type RecordKind } from '../readings/recordKinds.ts'
import { buildReadingsTree, type ReadingsTree } from '../rewards/readingsTree.ts'
import type { AcceptedReading, ValidatorStore } from '../validator/validatorStore.ts'

/** An accepted reading with what ties it to the chain: its leaf's proof against the epoch's readings root. */
export type ProvenReading = {
  epoch: string
  reading: SignedReadingJson
  /** The reading's EIP-712 digest: the leaf is keccak256(keccak256(digest)) (OpenZeppelin's StandardMerkleTree over ['bytes32']). */
  digest: Hex
  proof: Hex[]
  /** `EpochManager.readingsRootOf(epoch)` on-chain. */
  readingsRoot: Hex
}

export type ProveReadingsReturnType = {
  readings: ProvenReading[]
  /** Epochs left out: not settled on-chain, or this store's tree does not give the settled root. */
  unverifiable: string[]
}

/** Readings trees kept in memory, most recent first. */
const CACHED_TREES = 16

/**
 * Proves accepted readings against the readings roots the chain settled. The tree of an epoch
 * is rebuilt from the store's accepted readings and used only if its root is the one on-chain:
 * a reading is served with a proof or not at all.
 */
export function createReadingProver({
  store,
  indexer,
  keccak,
  kinds = [READING_KIND],
}: {
  store: Pick<ValidatorStore, 'acceptedDigests'>
  indexer: Pick<IndexerStore, 'getEpoch'>
  keccak: Keccak256
  /** The use case's record kinds: a record of a later kind is served naming its kind. */
  kinds?: readonly RecordKind[]
}) {
  const trees = new Map<bigint, { root: Hex; tree: ReadingsTree } | null>()

  function treeOf(epoch: bigint): { root: Hex; tree: ReadingsTree } | null {
    const settled = indexer.getEpoch(epoch)
    if (!settled) return null // not settled (yet): nothing to prove against, and not cached
    const cached = trees.get(epoch)
    if (cached !== undefined) return cached
    const digests = store.acceptedDigests(epoch)
    const tree =
      digests.length > 0
        ? buildReadingsTree(
            digests.map((d) => hexToBytes(d)),
            keccak,
          )
        : undefined
    const found = tree && tree.root === settled.readingsRoot ? { root: tree.root, tree } : null
    trees.set(epoch, found)
    if (trees.size > CACHED_TREES) trees.delete(trees.keys().next().value as bigint)
    return found
  }

  return {
    prove(items: readonly (AcceptedReading & { epoch: bigint })[]): ProveReadingsReturnType {
      const readings: ProvenReading[] = []
      const unverifiable = new Set<string>()
      for (const { epoch, reading, digest } of items) {
        const found = treeOf(epoch)
        const proof = found?.tree.getProof(digest)
        if (!found || !proof) {
          unverifiable.add(epoch.toString())
          continue
        }
        readings.push({
          epoch: epoch.toString(),
          reading: toRecordJson(reading, kinds),
          digest,
          proof,
          readingsRoot: found.root,
        })
      }
      return { readings, unverifiable: [...unverifiable] }
    },
  }
}
