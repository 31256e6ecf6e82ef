import { cellToLatLng, greatCircleDistance, latLngToCell } from 'h3-js'
import { describe, expect, it } from 'vitest'
import { cellDistanceM, isqrt } from './cellDistance.ts'
import { freeSpacePathLossCenti, maxRssiCenti, twentyLog10Centi } from './pathLoss.ts'

describe('free-space path loss in integers', () => {
  it('is within 0.9 dB below the exact 20·log10, never above it by more than rounding', () => {
    for (const x of [1n, 2n, 9n, 10n, 11n, 99n, 100n, 101n, 868_100n, 915_000n, 123_456_789n, 10n ** 15n]) {
      const exact = 2000 * Math.log10(Number(x))
      const table = twentyLog10Centi(x)
      expect(table, `x = ${x}`).toBeLessThanOrEqual(exact + 0.5)
      expect(table, `x = ${x}`).toBeGreaterThan(exact - 84)
    }
  })

  it('gives the textbook FSPL: 1 km at 868 MHz ≈ 91.2 dB', () => {
    const exact = 20 * Math.log10(1000) + 20 * Math.log10(868e6) - 147.55
    const fspl = freeSpacePathLossCenti(1000n, 868_000n) / 100
    expect(fspl).toBeLessThanOrEqual(exact + 0.01)
    expect(fspl).toBeGreaterThan(exact - 1.7)
    // 27 dBm, 3 + 3 dBi: about −58 dBm is the strongest signal 1 km away
    expect(
      maxRssiCenti({ txPowerCentiDbm: 2700, gainsCentiDbi: 600, distanceM: 1000n, frequencyKhz: 868_000n }),
    ).toBe(3300 - freeSpacePathLossCenti(1000n, 868_000n))
  })
})

describe('cell distance in integers', () => {
  it('is the exact integer square root', () => {
    for (const n of [0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, 10n ** 30n, 10n ** 30n - 1n]) {
      const r = isqrt(n)
      expect(r * r <= n && (r + 1n) * (r + 1n) > n, `√${n}`).toBe(true)
    }
  })

  // H3 cells are neither all of the average size nor regular (the icosahedron's faces are
  // projected): across Berlin the integer distance comes out up to 10 % long
  it('is within 12 % (plus a cell) of the great-circle distance across Berlin, at resolutions 10 to 12', () => {
    const spacingM: Record<number, number> = { 10: 132, 11: 50, 12: 19 }
    const places: [number, number][] = [
      [52.52, 13.405],
      [52.5163, 13.3777],
      [52.4862, 13.4449],
      [52.55, 13.3],
      [52.4, 13.06],
    ]
    for (const resolution of [10, 11, 12]) {
      for (const a of places) {
        for (const b of places) {
          const ca = latLngToCell(a[0], a[1], 12)
          const cb = latLngToCell(b[0], b[1], 12)
          const d = cellDistanceM(BigInt(`0x${ca}`), BigInt(`0x${cb}`), resolution)
          const exact = greatCircleDistance(cellToLatLng(ca), cellToLatLng(cb), 'm')
          expect(d, `${a} → ${b} at ${resolution}`).toBeDefined()
          expect(Math.abs(Number(d) - exact), `${a} → ${b} at ${resolution}`).toBeLessThan(
            0.12 * exact + 2 * (spacingM[resolution] ?? 0),
          )
        }
      }
    }
  })

  it('is undefined when H3 cannot relate the cells (another continent)', () => {
    const berlin = BigInt(`0x${latLngToCell(52.52, 13.405, 12)}`)
    const sydney = BigInt(`0x${latLngToCell(-33.87, 151.21, 12)}`)
    expect(cellDistanceM(berlin, sydney, 11)).toBeUndefined()
  })
})
