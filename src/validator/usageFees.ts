/**
 * Usage fees: what consumers paid providers of the data market (src/market/), credited by the
 * validators in the same cumulative rewards tree as emission.
 *
 * A provider redeems a consumer's voucher on the DataMarket; the tokens go to the
 * RewardDistributor's fee pool and the Redeemed event names the voucher's commitment to what was
 * served. For each epoch in which it redeemed, the provider publishes a served bundle
 * (src/market/servedBundle.ts) at `GET {url}/v1/market/served/:epoch`. At each epoch's agreement
 * a validator fetches the bundles of the providers that redeemed in that epoch or in the
 * `LATE_BATCH_EPOCHS` before it (while unsettled), checks each against the chain, and announces
 * their content addresses with its batches; a bundle counts by the same f + 1 rule.
 *
 * An epoch credits the redemptions since the last settled epoch before it (so those of epochs that
 * never settled are not lost), each split by splitFees over its counted bundle's readings: a
 * reading is proven when the settled epoch the bundle names for it accepted its digest (the
 * validator's own accepted readings of that epoch, fixed by the readings root). A validator whose
 * own result for such an epoch is not the settled one signs nothing for the epoch
 * (`served_input_unknown`), as for late batches.
 */
import { type Address, bytesToHex, type Hex } from 'viem'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { EpochRecord, IndexerStore, ProviderRecord, RedemptionRecord } from '../indexer/indexerStore.ts'
import {
  type CheckedServedBundle,
  decodeServedBundle,
  type ServedRedemption,
  servedBundleProblem,
} from '../market/servedBundle.ts'
import { type FeeCredits, type RedemptionToSplit, splitFees } from '../market/splitFees.ts'
import { readCappedBytes } from './readCapped.ts'

/** Largest served bundle a validator reads, bytes (≈ 130,000 readings). */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024

export type BundleFetchResult =
  | { type: 'bundle'; bundle: CheckedServedBundle }
  | { type: 'unavailable'; reason: string }
  | { type: 'invalid'; reason: string }

/**
 * Fetches a provider's served bundle of an epoch and checks it against the chain: its content
 * address, its form, and that it accounts for exactly the provider's redemptions of the epoch.
 */
export async function fetchServedBundle(
  keccak: Keccak256,
  provider: ProviderRecord,
  epoch: bigint,
  redemptions: readonly RedemptionRecord[],
  previous: (r: RedemptionRecord) => RedemptionRecord | undefined,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<BundleFetchResult> {
  let response: Response
  try {
    response = await fetch(`${provider.url.replace(/\/$/, '')}/v1/market/served/${epoch}`, {
      headers: options.headers ?? {},
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    })
  } catch (error) {
    return { type: 'unavailable', reason: error instanceof Error ? error.message : String(error) }
  }
  if (!response.ok) {
    await response.body?.cancel()
    return { type: 'unavailable', reason: `${provider.url} answered ${response.status} for epoch ${epoch}` }
  }
  try {
    const bytes = await readCappedBytes(response, MAX_BUNDLE_BYTES)
    const bundle = decodeServedBundle(keccak, bytes, bytesToHex(keccak(bytes)))
    const problem =
      bundle.provider.toLowerCase() !== provider.provider.toLowerCase() || bundle.epoch !== epoch
        ? `the bundle is ${bundle.provider}'s of epoch ${bundle.epoch}`
        : servedBundleProblem(keccak, bundle, redemptions, previous)
    if (problem) return { type: 'invalid', reason: `${provider.url}: ${problem}` }
    return { type: 'bundle', bundle }
  } catch (error) {
    if (error instanceof DepinError) return { type: 'invalid', reason: `${provider.url}: ${error.message}` }
    return { type: 'unavailable', reason: error instanceof Error ? error.message : String(error) }
  }
}

/** The redemptions of a provider in one epoch's window, in chain order. */
export function redemptionsOf(
  indexer: IndexerStore,
  provider: Address,
  window: { start: bigint; end: bigint },
): RedemptionRecord[] {
  return indexer
    .redemptionsBetween(window.start, window.end)
    .filter((r) => r.provider.toLowerCase() === provider.toLowerCase())
}

export type UsageFeesInput = {
  blueprint: Blueprint
  indexer: IndexerStore
  keccak: Keccak256
  /** Redemptions credited: those with block time in [from, to). */
  from: bigint
  to: bigint
  /** An epoch's time window [start, end). */
  windowOf(epoch: bigint): { start: bigint; end: bigint }
  /** The counted bundles (those f + 1 validators announced); each is checked against the chain again here. */
  bundles: readonly CheckedServedBundle[]
  /** The protocol's treasury (DataMarket.treasury()). */
  treasury: Address
  /** The owner of a device as of the crediting epoch's end. */
  ownerOf(device: string): Address | undefined
  /** The device whose reading `epoch` accepted with `digest`, from this validator's own results. */
  acceptedDevice(epoch: bigint, digest: Hex): string | undefined
  /** This validator's readings root for an epoch it judged (undefined when it did not). */
  ownReadingsRoot(epoch: bigint): Hex | undefined
  /** The settled epoch (undefined when it did not settle). */
  settled(epoch: bigint): EpochRecord | undefined
}

export type UsageFees =
  | (FeeCredits & {
      type: 'credited'
      redemptions: number
      paidReadings: bigint
      provenReadings: bigint
      /** Redemptions credited without a counted bundle (their amount went to the treasury). */
      unshown: number
    })
  | { type: 'unknown'; epoch: bigint }

/** Everything a split of market fees follows when the blueprint names no market: all to the treasury. */
const NO_MARKET_SPLIT = { deviceOwnersBps: 0, providerBps: 0, protocolBps: 10_000 }

/**
 * The fees an epoch credits: each redemption in [from, to) split over the proven readings of the
 * counted bundle that lists it. `unknown` when a bundle names a settled epoch this validator holds
 * no settled result for (it cannot tell which of its readings are proven).
 */
export function usageFees(input: UsageFeesInput): UsageFees {
  const redemptions = input.indexer.redemptionsBetween(input.from, input.to)
  const listed = new Map<string, ServedRedemption>()
  const previous = (r: RedemptionRecord) => input.indexer.redemptionBefore(r)
  for (const bundle of input.bundles) {
    const window = input.windowOf(bundle.epoch)
    if (window.end > input.to) continue
    const chain = redemptionsOf(input.indexer, bundle.provider, window)
    if (servedBundleProblem(input.keccak, bundle, chain, previous)) continue
    for (const r of bundle.redemptions) listed.set(`${r.block}:${r.logIndex}`, r)
  }
  const toSplit: RedemptionToSplit[] = []
  let unshown = 0
  let paidReadings = 0n
  let provenReadings = 0n
  for (const r of redemptions) {
    const before = previous(r)
    const paid = r.servedCount - (before?.servedCount ?? 0n)
    paidReadings += paid
    const items = listed.get(`${r.block}:${r.logIndex}`)?.items
    if (!items) unshown++
    const provenDevices: Address[] = []
    for (const item of items ?? []) {
      const settled = input.settled(item.epoch)
      if (!settled) continue // not in any settled root: unproven
      if (input.ownReadingsRoot(item.epoch) !== settled.readingsRoot)
        return { type: 'unknown', epoch: item.epoch }
      const device = input.acceptedDevice(item.epoch, item.digest)
      if (device && input.ownerOf(device)) provenDevices.push(device as Address)
    }
    provenReadings += BigInt(provenDevices.length)
    toSplit.push({ provider: r.provider, amount: r.amount, paidReadings: paid, provenDevices })
  }
  const split = input.blueprint.market?.split ?? NO_MARKET_SPLIT
  const credits = splitFees(toSplit, split, (d) => input.ownerOf(d) as Address, input.treasury)
  return {
    type: 'credited',
    ...credits,
    redemptions: redemptions.length,
    paidReadings,
    provenReadings,
    unshown,
  }
}
