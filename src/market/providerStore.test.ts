/**
 * The provider store's group commit: the answers recorded within one turn of the event loop share
 * one transaction, each with its own outcome.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { openProviderStore } from './providerStore.ts'
import { NOTHING_SERVED, type SignedVoucher } from './voucher.ts'

const dir = mkdtempSync(join(tmpdir(), 'depin-provider-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const provider: Address = '0x00000000000000000000000000000000000000aa'
const voucherOf = (consumer: Address): SignedVoucher => ({
  consumer,
  provider,
  cumulativeAmount: 0n,
  served: NOTHING_SERVED,
  servedCount: 0n,
  signature: `0x${'11'.repeat(65)}`,
})
const reading = (i: number, device: Address = '0x00000000000000000000000000000000000000d1') => ({
  epoch: 3n,
  digest: keccak256(toHex(`reading ${i}`)),
  device,
})

describe('the provider store', () => {
  it('commits the answers of one turn together, each with its own outcome', async () => {
    const store = openProviderStore(join(dir, 'provider.db'))
    const [a, b, c] = [`0x${'a1'.repeat(20)}`, `0x${'b2'.repeat(20)}`, `0x${'c3'.repeat(20)}`] as Address[]
    const next = (consumer: Address, readings: ReturnType<typeof reading>[], owed: bigint) => ({
      voucher: voucherOf(consumer),
      owed,
      served: keccak256(toHex(`served ${consumer}`)) as Hex,
      readings,
    })
    const start = { owed: 0n, servedCount: 0n }
    const outcomes = await Promise.allSettled([
      store.recordServedSoon(start, next(a as Address, [reading(0), reading(1)], 2n)),
      store.recordServedSoon(start, next(b as Address, [reading(2)], 1n)),
      // the same consumer again from the same state: another answer moved it on first
      store.recordServedSoon(start, next(a as Address, [reading(3)], 1n)),
      // one that throws (a reading without a device) fails alone
      store.recordServedSoon(start, next(c as Address, [reading(4, null as unknown as Address)], 1n)),
    ])
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'threw'))).toEqual([
      true,
      true,
      false,
      'threw',
    ])
    expect(store.channel(a as Address)).toMatchObject({ owed: 2n, servedCount: 2n })
    expect(store.served(a as Address, 0n, 5n).map((r) => r.digest)).toEqual([
      reading(0).digest,
      reading(1).digest,
    ])
    expect(store.channel(b as Address)).toMatchObject({ owed: 1n, servedCount: 1n })
    expect(store.channel(c as Address)).toMatchObject({ owed: 0n, servedCount: 0n })
    expect(store.served(c as Address, 0n, 5n)).toEqual([])
    store.close()
    // on disk: a reopened store has them
    const reopened = openProviderStore(join(dir, 'provider.db'))
    expect(reopened.channel(b as Address)).toMatchObject({ owed: 1n, servedCount: 1n })
    reopened.close()
  })
})
