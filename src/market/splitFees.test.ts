import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import { splitFees } from './splitFees.ts'

const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address
const split = { deviceOwnersBps: 7_000, providerBps: 2_000, protocolBps: 1_000 }
const treasury = address(0xdead)
const owners = new Map<string, Address>()
const ownerOf = (device: string) => owners.get(device) ?? address(0xbad)

/** xorshift32: a fixed sequence per seed. */
function random(seed: number) {
  let x = seed || 1
  return (n: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

describe('splitFees', () => {
  it('splits one redemption by the basis points, pro rata of the readings served (a fixed vector)', () => {
    const [d1, d2] = [address(1), address(2)]
    owners.set(d1, address(101))
    owners.set(d2, address(102))
    const { credits, byDevice, total } = splitFees(
      [{ provider: address(7), amount: 1_000n, paidReadings: 3n, provenDevices: [d1, d2, d1] }],
      split,
      ownerOf,
      treasury,
    )
    // devices 700: d1 2/3 → 466, d2 1/3 → 233; provider 200; treasury 1000 − 899 = 101
    expect(Object.fromEntries(byDevice)).toEqual({ [d1]: 466n, [d2]: 233n })
    expect(Object.fromEntries(credits)).toEqual({
      [address(101)]: 466n,
      [address(102)]: 233n,
      [address(7)]: 200n,
      [treasury]: 101n,
    })
    expect(total).toBe(1_000n)
  })

  it('gives the treasury what a provider could not show it served', () => {
    const d = address(1)
    owners.set(d, address(101))
    const half = splitFees(
      [{ provider: address(7), amount: 1_000n, paidReadings: 4n, provenDevices: [d, d] }],
      split,
      ownerOf,
      treasury,
    )
    expect(Object.fromEntries(half.credits)).toEqual({
      [address(101)]: 350n,
      [address(7)]: 100n,
      [treasury]: 550n,
    })
    const none = splitFees(
      [{ provider: address(7), amount: 1_000n, paidReadings: 4n, provenDevices: [] }],
      split,
      ownerOf,
      treasury,
    )
    expect(Object.fromEntries(none.credits)).toEqual({ [treasury]: 1_000n })
    expect(() =>
      splitFees(
        [{ provider: address(7), amount: 1n, paidReadings: 1n, provenDevices: [d, d] }],
        split,
        ownerOf,
        treasury,
      ),
    ).toThrow(RangeError)
  })

  it('credits exactly what was paid, never a device none of whose readings was proven (property, 2,000 cases)', () => {
    for (let seed = 1; seed <= 2_000; seed++) {
      const r = random(seed)
      const devices = Array.from({ length: 1 + r(12) }, (_, i) => address(1_000 + i))
      for (const [i, d] of devices.entries()) owners.set(d, address(2_000 + (i % 4)))
      const bps = r(10_001)
      const providerBps = r(10_001 - bps)
      const s = { deviceOwnersBps: bps, providerBps, protocolBps: 10_000 - bps - providerBps }
      const redemptions = Array.from({ length: r(6) }, () => {
        const paidReadings = BigInt(r(50))
        const proven = paidReadings === 0n ? 0 : r(Number(paidReadings) + 1)
        return {
          provider: address(3_000 + r(3)),
          amount: BigInt(r(1_000_000_000)) * 10n ** BigInt(r(12)),
          paidReadings,
          provenDevices: Array.from({ length: proven }, () => devices[r(devices.length)] as Address),
        }
      })
      const { credits, byDevice, total } = splitFees(redemptions, s, ownerOf, treasury)
      const paid = redemptions.reduce((sum, x) => sum + x.amount, 0n)
      expect(total).toBe(paid)
      expect([...credits.values()].reduce((a, b) => a + b, 0n)).toBe(paid)
      const served = new Set(redemptions.flatMap((x) => x.provenDevices.map((d) => d.toLowerCase())))
      for (const device of byDevice.keys()) expect(served.has(device)).toBe(true)
      for (const amount of credits.values()) expect(amount).toBeGreaterThan(0n)
      // no device gets more than the devices' pool of the redemptions that served it
      for (const [device, amount] of byDevice) {
        const pool = redemptions
          .filter((x) => x.provenDevices.some((d) => d.toLowerCase() === device))
          .reduce((sum, x) => sum + (x.amount * BigInt(s.deviceOwnersBps)) / 10_000n, 0n)
        expect(amount).toBeLessThanOrEqual(pool)
      }
    }
  })
})
