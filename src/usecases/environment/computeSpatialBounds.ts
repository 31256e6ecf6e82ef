import { cellToParent, getResolution, gridDisk, isValidCell } from 'h3-js'
import type { DeviceClassRules } from '../../blueprint/loadBlueprint.ts'
import { lowerMedianWithout } from '../../validator/judge/lowerMedianWithout.ts'

/** A device of one class, with the per-field lower medians of its readings that passed so far. */
export type SpatialDevice = { cell: bigint; medians: readonly bigint[] }

/** Per field: a reading is a spatial outlier when |value − center| > threshold for any field. */
export type SpatialBounds = { center: bigint[]; threshold: bigint[] }

export type SpatialRules = NonNullable<DeviceClassRules['quality']>['spatial']

/**
 * The spatial consistency bounds of each device of one class, or undefined where the rule is
 * skipped (fewer than `minNeighbours` neighbours, or a cell H3 does not know).
 *
 * Neighbours of d: the other devices whose cell, taken to `resolution` (a coarser cell is kept
 * as it is), lies in gridDisk(parent(d), ringSize). Per field f: center = lower median of the
 * neighbours' medians, MAD = lower median of |median − center| over the neighbours, threshold =
 * madMultiplier × max(MAD, minDeviation[f]). Integers only, so every validator gets the same bounds.
 *
 * Devices sharing a parent cell share a neighbourhood U (d included): per field the medians of U
 * are sorted once, and each device's center and MAD are the lower medians of U without d's own
 * entry (lowerMedianWithout), which keeps a dense city at O(|U| log |U|) per cell, not per device.
 * @param devices medians as int64 values (readings passed the range rule, so they are)
 */
export function computeSpatialBounds(
  devices: readonly SpatialDevice[],
  spatial: SpatialRules,
): (SpatialBounds | undefined)[] {
  const bounds: (SpatialBounds | undefined)[] = devices.map(() => undefined)
  const byParent = new Map<string, number[]>()
  devices.forEach((device, i) => {
    const parent = parentCell(device.cell, spatial.resolution)
    if (parent === undefined) return
    const members = byParent.get(parent)
    if (members === undefined) byParent.set(parent, [i])
    else members.push(i)
  })

  for (const [parent, members] of byParent) {
    // gridDisk includes the center cell; a Set guards against repeated cells near pentagons.
    const neighbourhood: number[] = []
    for (const cell of new Set(gridDisk(parent, spatial.ringSize))) {
      const inCell = byParent.get(cell)
      if (inCell !== undefined) neighbourhood.push(...inCell)
    }
    // Every member is in its own neighbourhood: it has size − 1 neighbours.
    if (neighbourhood.length - 1 < spatial.minNeighbours) continue

    for (const i of members) bounds[i] = { center: [], threshold: [] }
    spatial.minDeviation.forEach((minDeviation, f) => {
      const medians = new BigInt64Array(neighbourhood.length)
      neighbourhood.forEach((j, k) => {
        medians[k] = (devices[j] as SpatialDevice).medians[f] as bigint
      })
      medians.sort()
      // Sorted |median − center| over the neighbourhood, per center (members share at most two).
      const deviationsByCenter = new Map<bigint, BigUint64Array>()
      for (const i of members) {
        const own = (devices[i] as SpatialDevice).medians[f] as bigint
        const center = lowerMedianWithout(medians, own)
        let deviations = deviationsByCenter.get(center)
        if (deviations === undefined) {
          deviations = new BigUint64Array(medians.length)
          for (let k = 0; k < medians.length; k++) deviations[k] = absolute((medians[k] as bigint) - center)
          deviations.sort()
          deviationsByCenter.set(center, deviations)
        }
        const mad = lowerMedianWithout(deviations, absolute(own - center))
        const bound = bounds[i] as SpatialBounds
        bound.center.push(center)
        // biome-ignore lint/complexity/useMathMinMax: Math.max does not take bigints
        bound.threshold.push(spatial.madMultiplier * (mad > minDeviation ? mad : minDeviation))
      }
    })
  }
  return bounds
}

/** The H3 cell (as h3-js's hex string) of `cell` at `resolution`, or itself if coarser; undefined if not a cell. */
function parentCell(cell: bigint, resolution: number): string | undefined {
  if (cell <= 0n || cell >= 1n << 64n) return undefined
  const hex = cell.toString(16)
  if (!isValidCell(hex)) return undefined
  return cellToParent(hex, Math.min(getResolution(hex), resolution))
}

const absolute = (x: bigint): bigint => (x < 0n ? -x : x)
