import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareBigints, lowerMedian } from './lowerMedian.ts'

describe('lowerMedian', () => {
  it('takes sorted[floor((n − 1) / 2)]: the lower of the two middle values for an even count', () => {
    expect(lowerMedian([5n])).toBe(5n)
    expect(lowerMedian([3n, 1n])).toBe(1n)
    expect(lowerMedian([3n, 1n, 2n])).toBe(2n)
    expect(lowerMedian([40n, -10n, 30n, 20n])).toBe(20n)
    expect(lowerMedian([7n, 7n, 7n, 100n])).toBe(7n)
  })

  it('handles the int64 extremes and typed arrays without touching the input', () => {
    const typed = BigInt64Array.from([9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n, 0n])
    expect(lowerMedian(typed)).toBe(0n)
    expect([...typed]).toEqual([9_223_372_036_854_775_807n, -9_223_372_036_854_775_808n, 0n])
    expect(lowerMedian(BigUint64Array.from([18_446_744_073_709_551_615n, 1n]))).toBe(1n)
    const plain = [3n, 2n, 1n]
    lowerMedian(plain)
    expect(plain).toEqual([3n, 2n, 1n])
  })

  it('refuses an empty list', () => {
    expect(() => lowerMedian([])).toThrow(RangeError)
  })

  it('is the same for a plain array and a typed array, in any order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), { minLength: 1 }),
        (values) => {
          const median = lowerMedian(values)
          expect(lowerMedian(BigInt64Array.from(values))).toBe(median)
          expect(lowerMedian([...values].reverse())).toBe(median)
          const sorted = [...values].sort(compareBigints)
          expect(median).toBe(sorted[(values.length - 1) >> 1])
        },
      ),
    )
  })
})
