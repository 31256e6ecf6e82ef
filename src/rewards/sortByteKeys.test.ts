import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareBytes, sortByteKeys } from './sortByteKeys.ts'

/** The reference: Array.prototype.sort (stable) with a byte-by-byte comparison. */
function referenceOrder(keys: Uint8Array, stride: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    compareBytes(keys, a * stride, b * stride, stride),
  )
}

describe('sortByteKeys', () => {
  it('orders fixed-width keys byte-lexicographically, equal keys in index order', () => {
    const keys = Uint8Array.from([2, 0, 1, 9, 2, 0, 0, 5, 1, 9])
    expect([...sortByteKeys(keys, 2, 5)]).toEqual([3, 1, 4, 0, 2])
  })

  it('equals a stable comparison sort, short runs and long radix passes alike', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 256 }),
        fc.integer(),
        (stride, n, alphabet, seed) => {
          let s = seed >>> 0 || 1
          const keys = new Uint8Array(stride * n)
          for (let i = 0; i < keys.length; i++) {
            s ^= s << 13
            s ^= s >>> 17
            s ^= s << 5
            s >>>= 0
            keys[i] = s % alphabet // small alphabets give many equal keys and shared prefixes
          }
          expect([...sortByteKeys(keys, stride, n)]).toEqual(referenceOrder(keys, stride, n))
        },
      ),
      { numRuns: 200 },
    )
  })
})
