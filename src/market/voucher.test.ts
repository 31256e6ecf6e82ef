import { bytesToHex, keccak256, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import {
  createVoucherHasher,
  extendServed,
  extendServedWithViem,
  hashVoucher,
  NOTHING_SERVED,
  type Voucher,
} from './voucher.ts'

const domain = { chainId: 31337, market: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707' as const }

describe('createVoucherHasher', () => {
  it("gives viem's EIP-712 digest, at the edges of every field too", async () => {
    const hash = createVoucherHasher(await loadKeccak256(), domain)
    const base: Voucher = {
      consumer: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
      provider: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
      cumulativeAmount: 0n,
      served: NOTHING_SERVED,
      servedCount: 0n,
    }
    const cases: Voucher[] = [
      base,
      { ...base, cumulativeAmount: 10n ** 18n, served: keccak256(toHex('a')), servedCount: 3n },
      { ...base, cumulativeAmount: (1n << 256n) - 1n, servedCount: (1n << 64n) - 1n },
      { ...base, cumulativeAmount: 1n << 64n, served: `0x${'ff'.repeat(32)}` },
    ]
    for (const v of cases) expect(bytesToHex(hash(v))).toBe(hashVoucher(domain, v))
    expect(() => hash({ ...base, cumulativeAmount: 1n << 256n })).toThrow(RangeError)
    expect(() => hash({ ...base, servedCount: 1n << 64n })).toThrow(RangeError)
  })
})

describe('extendServed', () => {
  it("gives what viem's codecs give, from any start, and refuses what is not a 32-byte word", async () => {
    const keccak = await loadKeccak256()
    const digests = Array.from({ length: 50 }, (_, i) => keccak256(toHex(`reading ${i}`)))
    for (const start of [NOTHING_SERVED, keccak256(toHex('start')), `0x${'FF'.repeat(32)}` as const]) {
      for (const n of [0, 1, 2, 50]) {
        expect(extendServed(keccak, start, digests.slice(0, n))).toBe(
          extendServedWithViem(keccak, start, digests.slice(0, n)),
        )
      }
    }
    // a fixed vector: keccak256(0x00…00 ‖ keccak256("reading 0"))
    expect(extendServed(keccak, NOTHING_SERVED, digests.slice(0, 1))).toBe(
      keccak256(`0x${'00'.repeat(32)}${(digests[0] as string).slice(2)}`),
    )
    for (const bad of ['0x1234', `0x${'zz'.repeat(32)}`, `${'00'.repeat(33)}`]) {
      expect(() => extendServed(keccak, NOTHING_SERVED, [bad as `0x${string}`])).toThrow(RangeError)
      expect(() => extendServed(keccak, bad as `0x${string}`, [])).toThrow(RangeError)
    }
  })
})
