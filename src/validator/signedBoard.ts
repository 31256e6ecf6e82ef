import type { Address } from 'viem'

/** What happened to an item offered to a board. */
export type BoardKeepResult =
  | { type: 'stored' }
  | { type: 'duplicate' }
  | { type: 'dropped'; reason: 'EPOCH_TOO_OLD' | 'EPOCH_FULL' | 'SIGNER_FULL' }

export type SignedBoardOptions<T> = {
  /** Epochs kept: a newer epoch pushes out the oldest, an older one is dropped. */
  keepEpochs: number
  /** Distinct signers kept per epoch. */
  maxSigners: number
  /** Different items kept per signer and epoch (two are evidence of equivocation). */
  maxPerSigner: number
  /** Tells two items of one signer apart (a report's digest, …). */
  key: (item: T) => string
}

/**
 * Signed, already verified items by epoch and signer, in memory and bounded in every dimension,
 * so that nobody can make a validator hold more than keepEpochs × maxSigners × maxPerSigner items.
 */
export function createSignedBoard<T extends { epoch: bigint; signer: Address }>(
  options: SignedBoardOptions<T>,
) {
  /** epoch → lower-case signer → key → item */
  const board = new Map<bigint, Map<string, Map<string, T>>>()
  return {
    /** Keeps an item; runs without awaiting, so concurrent requests never interleave in it. */
    keep(item: T): BoardKeepResult {
      let byEpoch = board.get(item.epoch)
      if (!byEpoch) {
        if (board.size >= options.keepEpochs) {
          let oldest = item.epoch
          for (const epoch of board.keys()) if (epoch < oldest) oldest = epoch
          if (oldest === item.epoch) return { type: 'dropped', reason: 'EPOCH_TOO_OLD' }
          board.delete(oldest)
        }
        byEpoch = new Map()
        board.set(item.epoch, byEpoch)
      }
      const signer = item.signer.toLowerCase()
      let bySigner = byEpoch.get(signer)
      if (!bySigner) {
        if (byEpoch.size >= options.maxSigners) return { type: 'dropped', reason: 'EPOCH_FULL' }
        bySigner = new Map()
        byEpoch.set(signer, bySigner)
      }
      const key = options.key(item)
      if (bySigner.has(key)) return { type: 'duplicate' }
      if (bySigner.size >= options.maxPerSigner) return { type: 'dropped', reason: 'SIGNER_FULL' }
      bySigner.set(key, item)
      return { type: 'stored' }
    },
    /** One item, when held. */
    get(epoch: bigint, signer: Address, key: string): T | undefined {
      return board.get(epoch)?.get(signer.toLowerCase())?.get(key)
    },
    /** Every item of an epoch, grouped by signer. */
    bySigner(epoch: bigint): T[][] {
      return [...(board.get(epoch)?.values() ?? [])].map((items) => [...items.values()])
    },
  }
}
