import type { Address, Hex } from 'viem'
import type { EpochReport } from '../chain/typedData.ts'
import type { BatchSetAnnouncement } from './batchSets.ts'

/** One validator's signature over its report for an epoch. */
export type SignedEpochReport = {
  epoch: bigint
  report: EpochReport
  digest: Hex
  signer: Address
  signature: Hex
}

/** A peer that refused one of this validator's own items (a report or batch set), and why. */
export type PeerRefusal = { peer: string; code: string; message: string }

/**
 * What became of an item a validator published: every peer that answered and did not keep it.
 * Peers that are down are not listed (they are reported as peer errors, and they pull later).
 */
export type PublishOutcome = { refusals: PeerRefusal[] }

/** Returns a validator's sealed batch by content address, when it holds it. */
export type BatchSource = (hash: Hex) => Uint8Array | undefined

/** Returns the cumulative rewards (by lower-case account) a validator holds after an epoch. */
export type CumulativeSource = (epoch: bigint) => ReadonlyMap<string, bigint> | undefined

/**
 * How validators talk to each other. Before signing, each announces the batches it holds for the
 * epoch (`announceBatches`), reads everyone's (`collectBatchSets`) and fetches those it lacks from
 * a peer by content address (`fetchBatch`, served from each one's `serveBatches` source). Then
 * each publishes its signed report; the leader (and anyone else) collects them and submits the
 * report once a quorum signed the same digest. Signatures are checked by whoever uses them (the
 * contract re-checks reports anyway).
 */
export type ReportExchange = {
  publish(signed: SignedEpochReport): Promise<PublishOutcome>
  collect(epoch: bigint): Promise<SignedEpochReport[]>
  announceBatches(announcement: BatchSetAnnouncement): Promise<PublishOutcome>
  collectBatchSets(epoch: bigint): Promise<BatchSetAnnouncement[]>
  /** Makes this validator's batches fetchable by its peers. */
  serveBatches(source: BatchSource): void
  /** The first peer's bytes for `hash` that pass `check` (the content address), or undefined. */
  fetchBatch(hash: Hex, check: (bytes: Uint8Array) => boolean): Promise<Uint8Array | undefined>
  /** Makes the cumulative rewards this validator holds fetchable by its peers. */
  serveCumulative(source: CumulativeSource): void
  /**
   * The first peer's cumulative rewards after `epoch` that pass `check` (their rewards root is
   * the one the chain settled), or undefined: how a validator that joined late, or computed
   * something else, gets the base the next epoch builds on.
   */
  fetchCumulative(
    epoch: bigint,
    check: (amounts: ReadonlyMap<string, bigint>) => boolean,
  ): Promise<ReadonlyMap<string, bigint> | undefined>
}

/** An exchange inside one process: validators with their own keys and stores, sharing a board. */
export function createLocalReportExchange(): ReportExchange {
  const reports = new Map<bigint, Map<string, SignedEpochReport>>()
  const batchSets = new Map<bigint, Map<string, BatchSetAnnouncement>>()
  const sources: BatchSource[] = []
  const cumulativeSources: CumulativeSource[] = []
  const post = <T extends { epoch: bigint; signer: Address }>(
    board: Map<bigint, Map<string, T>>,
    item: T,
  ) => {
    const byEpoch = board.get(item.epoch) ?? new Map<string, T>()
    byEpoch.set(item.signer.toLowerCase(), item)
    board.set(item.epoch, byEpoch)
    for (const epoch of board.keys()) if (epoch < item.epoch - 16n) board.delete(epoch)
  }
  return {
    async publish(signed) {
      post(reports, signed)
      return { refusals: [] }
    },
    async collect(epoch) {
      return [...(reports.get(epoch)?.values() ?? [])]
    },
    async announceBatches(announcement) {
      post(batchSets, announcement)
      return { refusals: [] }
    },
    async collectBatchSets(epoch) {
      return [...(batchSets.get(epoch)?.values() ?? [])]
    },
    serveBatches(source) {
      sources.push(source)
    },
    async fetchBatch(hash, check) {
      return firstPassing(sources, hash, check)
    },
    serveCumulative(source) {
      cumulativeSources.push(source)
    },
    async fetchCumulative(epoch, check) {
      return firstPassing(cumulativeSources, epoch, check)
    },
  }
}

/** The first source's answer for `key` that passes `check`. */
function firstPassing<K, V>(
  sources: readonly ((key: K) => V | undefined)[],
  key: K,
  check: (value: V) => boolean,
): V | undefined {
  for (const source of sources) {
    const value = source(key)
    if (value !== undefined && check(value)) return value
  }
  return undefined
}
