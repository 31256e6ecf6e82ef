import type { Address } from 'viem'
import { runningEpoch } from '../chain/deployment.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import type { Admission } from './createHttpReportExchange.ts'

export type CreateExchangeAdmissionOptions = {
  /** The validator's own indexer: who the network's validators are. */
  validators: Pick<IndexerStore, 'validators'>
  genesisTime: bigint
  epochLength: bigint
  /** Unix seconds; defaults to the system clock. */
  clock?: () => bigint
  /** Epochs before the current one still accepted (default 16: a late peer, a slow leader). */
  behind?: bigint
  /** Epochs after the current one accepted (default 1: clock skew between machines). */
  ahead?: bigint
  /** Milliseconds the validator list is reused before it is read again (default 1,000). */
  cacheMs?: number
}

/**
 * The report exchange's first gate, checked before any signature is recovered: an item is kept
 * only when its epoch lies within [current − behind, current + ahead] and its signer is one of
 * the network's validators — active, slashed (its late reports are still evidence) or unbonding (it signed while active and is still
 * slashable, so its reports stay evidence). Throwaway keys and far-future epochs are refused at
 * the cost of a lookup, so they can neither fill the board nor push real epochs out of it.
 *
 * The set is the one the indexer holds now, not as of each epoch's end (the indexer keeps no
 * validator history yet); the chain counts current validators' signatures anyway.
 */
export function createExchangeAdmission(
  options: CreateExchangeAdmissionOptions,
): (item: { epoch: bigint; signer: Address }) => Admission {
  const clock = options.clock ?? (() => BigInt(Math.floor(Date.now() / 1000)))
  const behind = options.behind ?? 16n
  const ahead = options.ahead ?? 1n
  const cacheMs = options.cacheMs ?? 1_000
  let cached = { at: Number.NEGATIVE_INFINITY, signers: new Set<string>() }
  const signers = () => {
    if (Date.now() - cached.at < cacheMs) return cached.signers
    const set = new Set(
      options.validators
        .validators()
        .filter((v) => v.status === 'active' || v.status === 'unbonding' || v.status === 'slashed')
        .map((v) => v.validator.toLowerCase()),
    )
    cached = { at: Date.now(), signers: set }
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
    if (!signers().has(signer.toLowerCase())) {
      return {
        type: 'refused',
        code: 'SIGNER_NOT_VALIDATOR',
        message: `${signer} is not an active or unbonding validator of this network`,
      }
    }
    return { type: 'admitted' }
  }
}
