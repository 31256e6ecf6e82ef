/** Runs at most this long are finished with insertion sort instead of another radix pass. */
const INSERTION_SORT_MAX = 32

/** Lexicographic comparison of the `len` bytes starting at offsets a and b inside buf. */
export function compareBytes(buf: Uint8Array, a: number, b: number, len: number): number {
  for (let k = 0; k < len; k++) {
    const d = (buf[a + k] as number) - (buf[b + k] as number)
    if (d !== 0) return d
  }
  return 0
}

/**
 * Sorts idx[lo..hi) (indices of `stride`-byte keys in keys) by key, comparing from byte `depth` on
 * (earlier bytes are equal within the range): MSD radix sort, insertion sort for short runs. Both
 * passes are stable, so equal keys keep their index order.
 */
function sortRange(
  keys: Uint8Array,
  stride: number,
  idx: Uint32Array,
  tmp: Uint32Array,
  lo: number,
  hi: number,
  depth: number,
): void {
  if (depth >= stride || hi - lo < 2) return
  if (hi - lo <= INSERTION_SORT_MAX) {
    const len = stride - depth
    for (let i = lo + 1; i < hi; i++) {
      const v = idx[i] as number
      const vOff = v * stride + depth
      let j = i - 1
      while (j >= lo && compareBytes(keys, (idx[j] as number) * stride + depth, vOff, len) > 0) {
        idx[j + 1] = idx[j] as number
        j--
      }
      idx[j + 1] = v
    }
    return
  }
  const counts = new Uint32Array(257)
  for (let i = lo; i < hi; i++) {
    const d = (keys[(idx[i] as number) * stride + depth] as number) + 1
    counts[d] = (counts[d] as number) + 1
  }
  for (let b = 0; b < 256; b++) counts[b + 1] = (counts[b + 1] as number) + (counts[b] as number)
  const starts = counts.slice(0, 256)
  for (let i = lo; i < hi; i++) {
    const v = idx[i] as number
    const b = keys[v * stride + depth] as number
    tmp[lo + (counts[b] as number)] = v
    counts[b] = (counts[b] as number) + 1
  }
  idx.set(tmp.subarray(lo, hi), lo)
  for (let b = 0; b < 256; b++) {
    const start = lo + (starts[b] as number)
    const end = lo + (counts[b] as number)
    if (end - start > 1) sortRange(keys, stride, idx, tmp, start, end, depth + 1)
  }
}

/**
 * Indices 0..n-1 ordered by the `stride`-byte keys packed in keys (byte-lexicographic, stable: equal
 * keys stay in index order, as JavaScript's Array.prototype.sort keeps them).
 */
export function sortByteKeys(keys: Uint8Array, stride: number, n: number): Uint32Array {
  const idx = new Uint32Array(n)
  for (let i = 0; i < n; i++) idx[i] = i
  sortRange(keys, stride, idx, new Uint32Array(n), 0, n, 0)
  return idx
}
