import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareBigints, lowerMedian } from './lowerMedian.ts'
import { lowerMedianWithout } from './lowerMedianWithout.ts'

describe('lowerMedianWithout', () => {
  it('is the lower median of the list with one occurrence of the value removed', () => {
    const sorted = BigInt64Array.from([1n, 2n, 3n, 4n, 5n])
    expect(lowerMedianWithout(sorted, 1n)).toBe(3n) // 2 3 4 5
    expect(lowerMedianWithout(sorted, 3n)).toBe(2n) // 1 2 4 5
    expect(lowerMedianWithout(sorted, 5n)).toBe(2n) // 1 2 3 4
    expect(lowerMedianWithout([7n, 7n, 7n, 9n], 7n)).toBe(7n)
    expect(lowerMedianWithout([1n, 9n], 9n)).toBe(1n)
  })

  it('refuses a value not in the list and lists shorter than two', () => {
    expect(() => lowerMedianWithout([1n, 2n], 3n)).toThrow(RangeError)
    expect(() => lowerMedianWithout([1n], 1n)).toThrow(RangeError)
  })

  it('equals removing the element and taking the lower median, for any list and any member', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: -50n, max: 50n }), { minLength: 2, maxLength: 40 }),
        fc.nat(),
        (values, pick) => {
          const sorted = [...values].sort(compareBigints)
          const index = pick % sorted.length
          const value = sorted[index] as bigint
          const rest = sorted.filter((_, i) => i !== index)
          expect(lowerMedianWithout(sorted, value)).toBe(lowerMedian(rest))
          expect(lowerMedianWithout(BigInt64Array.from(sorted), value)).toBe(lowerMedian(rest))
        },
      ),
    )
  })
})
