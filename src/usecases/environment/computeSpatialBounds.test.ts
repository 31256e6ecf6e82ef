import fc from 'fast-check'
import { cellToParent, getResolution, gridDisk, latLngToCell } from 'h3-js'
import { describe, expect, it } from 'vitest'
import { lowerMedian } from '../../validator/judge/lowerMedian.ts'
import {
  computeSpatialBounds,
  type SpatialBounds,
  type SpatialDevice,
  type SpatialRules,
} from './computeSpatialBounds.ts'

const rules: SpatialRules = {
  resolution: 5,
  ringSize: 1,
  minNeighbours: 3,
  madMultiplier: 5n,
  minDeviation: [200n, 30n],
}
const cellAt = (lat: number, lng: number, res = 8): bigint => BigInt(`0x${latLngToCell(lat, lng, res)}`)

/** The rule exactly as written, device by device: the reference the fast version must equal. */
function naiveBounds(
  devices: readonly SpatialDevice[],
  spatial: SpatialRules,
): (SpatialBounds | undefined)[] {
  const parent = (cell: bigint) => {
    const hex = cell.toString(16)
    return cellToParent(hex, Math.min(getResolution(hex), spatial.resolution))
  }
  return devices.map((d, i) => {
    const disk = new Set(gridDisk(parent(d.cell), spatial.ringSize))
    const neighbours = devices.filter((n, j) => j !== i && disk.has(parent(n.cell)))
    if (neighbours.length < spatial.minNeighbours) return undefined
    const center: bigint[] = []
    const threshold: bigint[] = []
    spatial.minDeviation.forEach((minDeviation, f) => {
      const m = lowerMedian(neighbours.map((n) => n.medians[f] as bigint))
      const mad = lowerMedian(
        neighbours.map((n) =>
          (n.medians[f] as bigint) > m ? (n.medians[f] as bigint) - m : m - (n.medians[f] as bigint),
        ),
      )
      center.push(m)
      // biome-ignore lint/complexity/useMathMinMax: Math.max does not take bigints
      threshold.push(spatial.madMultiplier * (mad > minDeviation ? mad : minDeviation))
    })
    return { center, threshold }
  })
}

describe('computeSpatialBounds', () => {
  it('centers each device on its neighbours, not on itself', () => {
    const devices: SpatialDevice[] = [
      { cell: cellAt(52.52, 13.405), medians: [2150n, 550n] },
      { cell: cellAt(52.53, 13.41), medians: [2160n, 560n] },
      { cell: cellAt(52.51, 13.39), medians: [2140n, 545n] },
      { cell: cellAt(52.5, 13.42), medians: [2155n, 552n] },
      { cell: cellAt(52.52, 13.38), medians: [4000n, 100n] },
    ]
    const bounds = computeSpatialBounds(devices, rules)
    // the liar (index 4) is judged against the four honest medians: lower median 2150, MAD 5 → floor 200
    expect(bounds[4]).toEqual({ center: [2150n, 550n], threshold: [1000n, 150n] })
    // an honest device's neighbours include the liar, whose pull the medians ignore
    expect(bounds[0]).toEqual({ center: [2155n, 545n], threshold: [1000n, 150n] })
  })

  it('skips devices with fewer than minNeighbours neighbours and cells H3 does not know', () => {
    const devices: SpatialDevice[] = [
      { cell: cellAt(52.52, 13.405), medians: [1n, 1n] },
      { cell: cellAt(52.53, 13.41), medians: [2n, 2n] },
      { cell: cellAt(52.51, 13.39), medians: [3n, 3n] },
      { cell: (1n << 59n) | 0xfffn, medians: [4n, 4n] }, // mode 1 but no valid cell
      { cell: cellAt(48.85, 2.35), medians: [5n, 5n] }, // Paris: nobody near
    ]
    expect(computeSpatialBounds(devices, rules)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ])
    const withFourth = [...devices, { cell: cellAt(52.5, 13.42), medians: [9n, 9n] }]
    const bounds = computeSpatialBounds(withFourth, rules)
    expect(bounds.map((b) => b !== undefined)).toEqual([true, true, true, false, false, true])
  })

  it('treats a cell coarser than the rule resolution as its own parent', () => {
    const coarse = cellAt(52.52, 13.405, 4)
    const devices: SpatialDevice[] = [
      { cell: coarse, medians: [1n, 1n] },
      { cell: coarse, medians: [2n, 2n] },
      { cell: coarse, medians: [3n, 3n] },
      { cell: coarse, medians: [4n, 4n] },
      { cell: cellAt(52.52, 13.405), medians: [5n, 5n] }, // res 8: its res-5 parent is no res-4 cell
    ]
    const bounds = computeSpatialBounds(devices, rules)
    expect(bounds.map((b) => b !== undefined)).toEqual([true, true, true, true, false])
  })

  it('equals the rule applied device by device, for random fleets around Berlin', () => {
    const device = fc.record({
      lat: fc.integer({ min: 5230, max: 5270 }),
      lng: fc.integer({ min: 1300, max: 1380 }),
      res: fc.constantFrom(4, 5, 7, 9),
      a: fc.bigInt({ min: -6000n, max: 6000n }),
      b: fc.bigInt({ min: 0n, max: 10000n }),
    })
    fc.assert(
      fc.property(
        fc.array(device, { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        (fleet, minNeighbours) => {
          const devices = fleet.map((d) => ({
            cell: cellAt(d.lat / 100, d.lng / 100, d.res),
            medians: [d.a, d.b],
          }))
          const spatial = { ...rules, minNeighbours }
          expect(computeSpatialBounds(devices, spatial)).toEqual(naiveBounds(devices, spatial))
        },
      ),
      { numRuns: 200 },
    )
  })
})
