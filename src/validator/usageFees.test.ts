/**
 * What a provider earns for what it shows it served: usageFees over one redemption of five readings
 * (amount 1,000, the environment blueprint's split 70 % / 20 % / 10 %), against a bundle that holds,
 * one listing readings no settled root accepted, one whose readings are not the voucher's
 * commitment, none at all, and one naming an epoch this validator judged differently.
 */
import { type Address, bytesToHex, type Hex, keccak256, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import type { EpochRecord, IndexerStore, RedemptionRecord } from '../indexer/indexerStore.ts'
import { type CheckedServedBundle, encodeServedBundle, type ServedBundle } from '../market/servedBundle.ts'
import { extendServed, NOTHING_SERVED } from '../market/voucher.ts'
import { type UsageFeesInput, usageFees } from './usageFees.ts'

const keccak = await loadKeccak256()
const blueprint = loadBlueprint('blueprints/environment.yaml')
const provider: Address = '0x00000000000000000000000000000000000000aa'
const consumer: Address = '0x00000000000000000000000000000000000000bb'
const treasury: Address = '0x00000000000000000000000000000000000000cc'
const [d1, d2, d3] = [`0x${'01'.repeat(20)}`, `0x${'02'.repeat(20)}`, `0x${'03'.repeat(20)}`]
const ownerOf = (device: string) => `0x${'e'.repeat(39)}${device.slice(-1)}` as Address
const digests = Array.from({ length: 5 }, (_, i) => keccak256(toHex(`reading ${i}`)))
/** What epoch 5 accepted: readings 0–2 of d1, d2, d2; 3 and 4 (of d3) were never accepted. */
const accepted = new Map<Hex, string>([
  [digests[0] as Hex, d1 as string],
  [digests[1] as Hex, d2 as string],
  [digests[2] as Hex, d2 as string],
])
const ROOT: Hex = `0x${'ab'.repeat(32)}`
const epochLength = 10n
const windowOf = (epoch: bigint) => ({ start: epoch * epochLength, end: (epoch + 1n) * epochLength })

const redemption: RedemptionRecord = {
  block: 40n,
  logIndex: 0,
  blockTimestamp: 75n, // epoch 7
  txHash: `0x${'00'.repeat(32)}`,
  consumer,
  provider,
  amount: 1_000n,
  cumulativeAmount: 1_000n,
  served: extendServed(keccak, NOTHING_SERVED, digests),
  servedCount: 5n,
}
const indexer = {
  redemptionsBetween: (from: bigint, to: bigint) =>
    redemption.blockTimestamp >= from && redemption.blockTimestamp < to ? [redemption] : [],
  redemptionBefore: () => undefined,
} as unknown as IndexerStore

const bundleOf = (items: { digest: Hex; epoch: bigint }[]): CheckedServedBundle => {
  const bundle: ServedBundle = {
    provider,
    epoch: 7n,
    redemptions: [{ consumer, block: 40n, logIndex: 0, fromCount: 0n, items }],
  }
  const bytes = encodeServedBundle(bundle)
  return { ...bundle, bytes, hash: bytesToHex(keccak(bytes)) }
}
const honest = bundleOf(digests.map((digest) => ({ digest, epoch: 5n })))

const feesWith = (bundles: CheckedServedBundle[], overrides: Partial<UsageFeesInput> = {}) =>
  usageFees({
    blueprint,
    indexer,
    keccak,
    from: 70n,
    to: 80n,
    windowOf,
    bundles,
    treasury,
    ownerOf,
    acceptedDevice: (epoch, digest) => (epoch === 5n ? accepted.get(digest) : undefined),
    ownReadingsRoot: (epoch) => (epoch === 5n ? ROOT : undefined),
    settled: (epoch) => (epoch === 5n ? ({ epoch, readingsRoot: ROOT } as EpochRecord) : undefined),
    ...overrides,
  })

const credits = (fees: ReturnType<typeof usageFees>) => {
  if (fees.type !== 'credited') throw new Error(`fees ${fees.type}`)
  return Object.fromEntries(fees.credits)
}
const lower = (a: string) => a.toLowerCase()

describe('usage fees', () => {
  it('pay the served devices, pro rata, and the provider only for the readings a settled root accepted', () => {
    const fees = feesWith([honest])
    // devices' pool 700 over 5 paid: d1 1 → 140, d2 2 → 280; d3's readings were never accepted:
    // its owner gets nothing; the provider 200 × 3/5 = 120; the treasury the rest
    expect(credits(fees)).toEqual({
      [lower(ownerOf(d1 as string))]: 140n,
      [lower(ownerOf(d2 as string))]: 280n,
      [provider]: 120n,
      [treasury]: 460n,
    })
    expect(credits(fees)[lower(ownerOf(d3 as string))]).toBeUndefined()
    expect(fees).toMatchObject({ total: 1_000n, paidReadings: 5n, provenReadings: 3n, unshown: 0 })
  })

  it('give the treasury everything when the bundle does not give the voucher’s commitment', () => {
    // the same count, one reading swapped for another: not what the consumer signed for
    const forged = bundleOf(
      [...digests.slice(0, 4), keccak256(toHex('never served'))].map((digest) => ({ digest, epoch: 5n })),
    )
    expect(credits(feesWith([forged]))).toEqual({ [treasury]: 1_000n })
    expect(feesWith([forged])).toMatchObject({ unshown: 1, provenReadings: 0n })
  })

  it('give the treasury everything when no bundle shows what was served, or it names no settled epoch', () => {
    expect(credits(feesWith([]))).toEqual({ [treasury]: 1_000n })
    const unsettled = bundleOf(digests.map((digest) => ({ digest, epoch: 6n })))
    expect(credits(feesWith([unsettled]))).toEqual({ [treasury]: 1_000n })
  })

  it('are unknown to a validator whose own result for a named epoch is not the settled one', () => {
    const fees = feesWith([honest], { ownReadingsRoot: () => `0x${'cd'.repeat(32)}` })
    expect(fees).toEqual({ type: 'unknown', epoch: 5n })
  })
})
