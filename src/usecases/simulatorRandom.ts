/**
 * Seeded randomness for the simulator: every value is a function of the seed, so a fleet is
 * the same on every run. Never Math.random.
 */

/** mulberry32: a small, fast 32-bit PRNG; each call returns a float in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Mixes integers into one 32-bit hash (murmur3's finaliser on each word). */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9
  for (const word of words) {
    let k = Math.imul(word | 0, 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h ^= k
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * Noise in about [-1, 1], roughly bell-shaped (mean of three uniforms), fixed for its inputs:
 * `noise(seed, station, time, field)` is the same whatever was computed before it.
 */
export function noise(...words: number[]): number {
  const next = mulberry32(hash32(...words))
  return ((next() + next() + next()) / 3 - 0.5) * 2
}
