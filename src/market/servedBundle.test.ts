import { bytesToHex, type Hex, keccak256, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import type { RedemptionRecord } from '../indexer/indexerStore.ts'
import {
  decodeServedBundle,
  encodeServedBundle,
  isServedBundle,
  servedBundleProblem,
} from './servedBundle.ts'
import { extendServed, NOTHING_SERVED } from './voucher.ts'

const keccak = await loadKeccak256()
const provider = '0x00000000000000000000000000000000000000aa'
const consumer = '0x00000000000000000000000000000000000000bb'
const digests = Array.from({ length: 5 }, (_, i) => keccak256(toHex(`reading ${i}`)))

/** Two redemptions of one pair: readings 0–2, then 3–4. */
const chain: RedemptionRecord[] = [
  { upTo: 3, block: 10n, logIndex: 0 },
  { upTo: 5, block: 12n, logIndex: 1 },
].map(({ upTo, block, logIndex }) => ({
  block,
  logIndex,
  blockTimestamp: 100n,
  txHash: `0x${'00'.repeat(32)}`,
  consumer,
  provider,
  amount: 1n,
  cumulativeAmount: BigInt(upTo),
  served: extendServed(keccak, NOTHING_SERVED, digests.slice(0, upTo)),
  servedCount: BigInt(upTo),
}))
const previous = (r: RedemptionRecord) => (r === chain[1] ? chain[0] : undefined)
const bundle = {
  provider: provider as Hex,
  epoch: 7n,
  redemptions: [
    {
      consumer: consumer as Hex,
      block: 12n,
      logIndex: 1,
      fromCount: 3n,
      items: digests.slice(3).map((digest) => ({ digest, epoch: 5n })),
    },
  ],
}

describe('served bundles', () => {
  it('round-trips its canonical bytes under their content address, and tells itself from a batch', () => {
    const bytes = encodeServedBundle(bundle)
    const hash = bytesToHex(keccak(bytes))
    expect(isServedBundle(bytes)).toBe(true)
    expect(
      isServedBundle(new TextEncoder().encode('{"format":"depin-batch/1","epoch":"1","count":0}\n')),
    ).toBe(false)
    expect(decodeServedBundle(keccak, bytes, hash)).toMatchObject(bundle)
    expect(() => decodeServedBundle(keccak, bytes, keccak256('0x01'))).toThrow(/content address/)
    // the same content with a space: not canonical
    const spaced = new TextEncoder().encode(
      new TextDecoder().decode(bytes).replace('"epoch":"7"', '"epoch": "7"'),
    )
    expect(() => decodeServedBundle(keccak, spaced, bytesToHex(keccak(spaced)))).toThrow(/canonical/)
  })

  it("holds only when its redemptions are the chain's and their readings give the vouchers' commitments", () => {
    expect(servedBundleProblem(keccak, bundle, [chain[1] as RedemptionRecord], previous)).toBeUndefined()
    const swapped = {
      ...bundle,
      redemptions: [{ ...bundle.redemptions[0], items: [...(bundle.redemptions[0]?.items ?? [])].reverse() }],
    }
    expect(
      servedBundleProblem(keccak, swapped as typeof bundle, [chain[1] as RedemptionRecord], previous),
    ).toMatch(/commitment/)
    const short = {
      ...bundle,
      redemptions: [{ ...bundle.redemptions[0], items: bundle.redemptions[0]?.items.slice(1) }],
    }
    expect(
      servedBundleProblem(keccak, short as typeof bundle, [chain[1] as RedemptionRecord], previous),
    ).toMatch(/counts 2/)
    expect(servedBundleProblem(keccak, bundle, [], previous)).toMatch(/chain has 0/)
    const wrongStart = { ...bundle, redemptions: [{ ...bundle.redemptions[0], fromCount: 0n }] }
    expect(
      servedBundleProblem(keccak, wrongStart as typeof bundle, [chain[1] as RedemptionRecord], previous),
    ).toMatch(/starts at 0/)
  })
})
