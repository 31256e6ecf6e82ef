/**
 * The lower median: sorted[floor((n − 1) / 2)], always one of the values (no averaging, so no
 * fractions and no floating point). Typed arrays sort natively, which is much faster for long runs.
 * @param values at least one value; not modified
 */
export function lowerMedian(values: readonly bigint[] | BigInt64Array | BigUint64Array): bigint {
  const n = values.length
  if (n === 0) throw new RangeError('lower median of no values')
  const sorted =
    values instanceof BigInt64Array || values instanceof BigUint64Array
      ? values.slice().sort()
      : [...values].sort(compareBigints)
  return sorted[(n - 1) >> 1] as bigint
}

/** Ascending order of bigints, for Array.prototype.sort. */
export function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0
}
