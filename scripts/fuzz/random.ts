/**
 * Seeded randomness for the fuzzer: one small PRNG for the choices a mutation makes, and pools of
 * values drawn from fast-check arbitraries (refilled from the same seed), so a `--seed` replays
 * the same inputs in the same order per target.
 */
import fc from 'fast-check'

/** A seeded source of choices (xoshiro128**: fast, 2^128 − 1 period, plenty for a fuzzer). */
export type Random = {
  /** An integer in [0, n). */
  int(n: number): number
  /** True with probability `p`. */
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  /** Picks by weight: `[[weight, value], …]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T
  bytes(n: number): Uint8Array
  /** A seed for something seeded of its own (a fast-check sample). */
  seed(): number
}

export function createRandom(seed: number): Random {
  // splitmix32 spreads the seed over the four words of state
  let s = seed >>> 0
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split()
  let b = split()
  let c = split()
  let d = split()
  const next = () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = rotl(d, 11)
    return result
  }
  const random: Random = {
    int: (n) => (n <= 1 ? 0 : Math.floor((next() / 0x1_0000_0000) * n)),
    chance: (p) => next() / 0x1_0000_0000 < p,
    pick: (items) => items[random.int(items.length)] as (typeof items)[number],
    weighted: (choices) => {
      const total = choices.reduce((sum, [w]) => sum + w, 0)
      let at = (next() / 0x1_0000_0000) * total
      for (const [weight, value] of choices) {
        if (at < weight) return value
        at -= weight
      }
      return (choices[choices.length - 1] as readonly [number, (typeof choices)[number][1]])[1]
    },
    bytes: (n) => {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = next() & 0xff
      return out
    },
    seed: () => next() | 0,
  }
  return random
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0

/** Values of a fast-check arbitrary, sampled `chunk` at a time from seeds the `random` gives. */
export type ArbitraryPool<T> = { next(): T }

export function arbitraryPool<T>(arbitrary: fc.Arbitrary<T>, random: Random, chunk = 512): ArbitraryPool<T> {
  let values: T[] = []
  let at = 0
  return {
    next() {
      if (at >= values.length) {
        values = fc.sample(arbitrary, { seed: random.seed(), numRuns: chunk })
        at = 0
      }
      return values[at++] as T
    },
  }
}
