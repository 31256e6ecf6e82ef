import type { Address } from 'viem'
import { runningEpoch } from '../chain/deployment.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import type { Admission } from './createHttpReportExchange.ts'

export type CreateExchangeAdmissionOptions = {
  /** The validator's own indexer: who the network's validators are, and were at each epoch's end. */
  validators: Pick<IndexerStore, 'validators' | 'activeValidatorsAt' | 'lastProcessed'>
  genesisTime: bigint
  epochLength: bigint
  /** Unix seconds; defaults to the system clock. */
  clock?: () => bigint
  /** Epochs before the current one still accepted (default 16: a late peer, a slow leader). */
  behind?: bigint
  /** Epochs after the current one accepted (default 1: clock skew between machines). */
  ahead?: bigint
  /** Milliseconds the current validator list is reused before it is read again (default 1,000). */
  cacheMs?: number
}

/**
 * The report exchange's first gate, checked before any signature is recovered: an item is kept
 * only when its epoch lies within [current − behind, current + ahead] and its signer was an
 * active validator at the epoch's end (from the indexer's history of the set; one that left or
 * was slashed since still signed while active, so its items stay evidence). For an epoch whose end
 * the indexer has not reached yet, the set active now stands in. Throwaway keys and far-future
 * epochs are refused at the cost of a lookup, so they can neither fill the board nor push real
 * epochs out of it.
 */
export function createExchangeAdmission(
  options: CreateExchangeAdmissionOptions,
): (item: { epoch: bigint; signer: Address }) => Admission {
  const clock = options.clock ?? (() => BigInt(Math.floor(Date.now() / 1000)))
  const behind = options.behind ?? 16n
  const ahead = options.ahead ?? 1n
  const cacheMs = options.cacheMs ?? 1_000
  let current = { at: Number.NEGATIVE_INFINITY, signers: new Set<string>() }
  const activeNow = () => {
    if (Date.now() - current.at < cacheMs) return current.signers
    const set = new Set(
      options.validators
        .validators()
        .filter((v) => v.status === 'active')
        .map((v) => v.validator.toLowerCase()),
    )
    current = { at: Date.now(), signers: set }
    return set
  }
  // an epoch's set is final once the indexer passed its end: kept for the epochs of the window
  const atEnd = new Map<bigint, Set<string>>()
  const signers = (epoch: bigint): Set<string> => {
    const kept = atEnd.get(epoch)
    if (kept) return kept
    const end = options.genesisTime + (epoch + 1n) * options.epochLength
    const processed = options.validators.lastProcessed()
    if (!processed || processed.timestamp < end) return activeNow()
    const set = new Set(options.validators.activeValidatorsAt(end).map((v) => v.toLowerCase()))
    atEnd.set(epoch, set)
    for (const old of atEnd.keys()) if (old + behind + ahead + 1n < epoch) atEnd.delete(old)
    return set
  }
  return ({ epoch, signer }) => {
    const now = clock()
    const current = runningEpoch(now, options)
    if (epoch + behind < current || epoch > current + ahead) {
      return {
        type: 'refused',
        code: 'EPOCH_OUT_OF_WINDOW',
        message: `epoch ${epoch} is outside [${current > behind ? current - behind : 0n}, ${current + ahead}] (the current epoch is ${current})`,
      }
    }
    if (!signers(epoch).has(signer.toLowerCase())) {
      return {
        type: 'refused',
        code: 'SIGNER_NOT_VALIDATOR',
        message: `${signer} was not an active validator of this network at epoch ${epoch}'s end`,
      }
    }
    return { type: 'admitted' }
  }
}
