import { describe, expect, it } from 'vitest'
import { epochEmission } from './epochEmission.ts'

const token = {
  name: 'T',
  symbol: 'T',
  genesisSupply: 0n,
  initialEpochEmission: 1000n * 10n ** 18n,
  halvingIntervalEpochs: 10,
}

describe('epochEmission', () => {
  it('halves every halvingIntervalEpochs epochs, as DepinToken.emissionFor', () => {
    expect(epochEmission(token, 0n)).toBe(1000n * 10n ** 18n)
    expect(epochEmission(token, 9n)).toBe(1000n * 10n ** 18n)
    expect(epochEmission(token, 10n)).toBe(500n * 10n ** 18n)
    expect(epochEmission(token, 25n)).toBe(250n * 10n ** 18n)
    expect(epochEmission(token, 10n * 69n)).toBe((1000n * 10n ** 18n) >> 69n)
  })

  it('is zero once the shift reaches 256, however large the initial emission', () => {
    const huge = { ...token, initialEpochEmission: (1n << 300n) - 1n }
    expect(epochEmission(huge, 10n * 255n)).toBe(((1n << 300n) - 1n) >> 255n)
    expect(epochEmission(huge, 10n * 256n)).toBe(0n)
    expect(epochEmission(huge, (1n << 64n) - 1n)).toBe(0n)
  })
})
