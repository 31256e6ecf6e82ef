/**
 * The lower median of a sorted list with one occurrence of `value` taken out, without copying it:
 * removing the element at index j shifts every later one down by one, so the lower median of the
 * n − 1 remaining, at index k = floor((n − 2) / 2), is sorted[k] when k < j and sorted[k + 1]
 * otherwise. Equal values are interchangeable, so j is the first occurrence.
 * @param sorted ascending, at least two elements, holding `value`
 */
export function lowerMedianWithout(
  sorted: BigInt64Array | BigUint64Array | readonly bigint[],
  value: bigint,
): bigint {
  const n = sorted.length
  if (n < 2) throw new RangeError('lower median without one value needs at least two values')
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as bigint) < value) lo = mid + 1
    else hi = mid
  }
  if (lo === n || sorted[lo] !== value) throw new RangeError(`value ${value} is not in the list`)
  const k = (n - 2) >> 1
  return (k < lo ? sorted[k] : sorted[k + 1]) as bigint
}
