/**
 * Distance between two asserted H3 cells in whole metres, in integers: both cells are taken to a
 * resolution, their H3 local IJ coordinates (integers, h3-js) give the hex-lattice offset (di, dj),
 * and √(di² + dj² − di·dj) cell spacings (the average centre-to-centre spacing of that resolution,
 * √3 × the average edge) is the distance. H3 cells are neither all of the average size nor
 * regular (faces of an icosahedron, projected), so the figure is approximate — across Berlin up to
 * 10 % long — but the same for every validator, bit for bit.
 */
import { cellToLocalIj, cellToParent, getResolution } from 'h3-js'

/** Average centre-to-centre spacing of H3 cells in millimetres (√3 × getHexagonEdgeLengthAvg), by resolution. */
export const CELL_SPACING_MM: Readonly<Record<number, bigint>> = {
  7: 2_436_087n,
  8: 920_436n,
  9: 347_772n,
  10: 131_400n,
  11: 49_647n,
  12: 18_758n,
}

/** Integer square root (floor), by Newton's method on bigints. */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError(`square root of ${n}`)
  if (n < 2n) return n
  let x = 1n << BigInt((n.toString(2).length >> 1) + 1) // above √n
  for (;;) {
    const next = (x + n / x) >> 1n
    if (next >= x) return x
    x = next
  }
}

/**
 * Metres between the centres of two cells at `resolution` (each cell at or below it), or undefined
 * when H3 cannot relate them (too far apart: across a pentagon or distant base cells).
 */
export function cellDistanceM(a: bigint, b: bigint, resolution: number): bigint | undefined {
  return createCellDistance(resolution)(a, b)
}

/**
 * cellDistanceM at one resolution, remembering each cell's parent and each origin's own IJ (a
 * judge measures many witnesses against one beaconer).
 */
export function createCellDistance(resolution: number): (a: bigint, b: bigint) => bigint | undefined {
  const spacing = CELL_SPACING_MM[resolution]
  if (spacing === undefined) throw new RangeError(`no cell spacing for H3 resolution ${resolution}`)
  const hexes = new Map<bigint, string | null>()
  const at = (cell: bigint): string | null => {
    let hex = hexes.get(cell)
    if (hex === undefined) {
      try {
        const own = cell.toString(16)
        hex = getResolution(own) === resolution ? own : cellToParent(own, resolution)
      } catch {
        hex = null // not a cell, or coarser than the resolution
      }
      hexes.set(cell, hex)
    }
    return hex
  }
  const origins = new Map<string, { i: number; j: number } | null>()
  return (a, b) => {
    const origin = at(a)
    const other = at(b)
    if (origin === null || other === null) return undefined
    let p = origins.get(origin)
    if (p === undefined) {
      try {
        p = cellToLocalIj(origin, origin)
      } catch {
        p = null
      }
      origins.set(origin, p)
    }
    if (p === null) return undefined
    let q: { i: number; j: number }
    try {
      q = cellToLocalIj(origin, other)
    } catch {
      return undefined
    }
    const di = BigInt(q.i - p.i)
    const dj = BigInt(q.j - p.j)
    return isqrt((di * di + dj * dj - di * dj) * spacing * spacing) / 1000n
  }
}
