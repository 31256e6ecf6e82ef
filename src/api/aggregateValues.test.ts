import { describe, expect, it } from 'vitest'
import { aggregateValues } from './aggregateValues.ts'

describe('aggregateValues', () => {
  it('gives count, min, max, lower median and the mean truncated toward zero', () => {
    expect(aggregateValues([2150n, 2010n, -30n, 2200n])).toEqual({
      count: 4,
      min: -30n,
      max: 2200n,
      median: 2010n,
      mean: 1582n, // 6330 / 4 = 1582.5
    })
    expect(aggregateValues([-7n, -8n])).toMatchObject({ median: -8n, mean: -7n }) // -15 / 2 = -7.5
  })

  it('says count 0 for no values', () => {
    expect(aggregateValues([])).toEqual({ count: 0 })
  })
})
