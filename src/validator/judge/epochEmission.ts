import type { Blueprint } from '../../blueprint/loadBlueprint.ts'

/**
 * Tokens an epoch may mint, exactly as DepinToken.emissionFor computes it:
 * initialEpochEmission >> (epoch / halvingIntervalEpochs), 0 once 256 halvings have passed.
 */
export function epochEmission(token: Blueprint['token'], epoch: bigint): bigint {
  if (epoch < 0n) throw new RangeError(`epoch ${epoch} is negative`)
  const halvings = epoch / BigInt(token.halvingIntervalEpochs)
  return halvings >= 256n ? 0n : token.initialEpochEmission >> halvings
}
