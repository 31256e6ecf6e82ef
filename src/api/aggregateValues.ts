import { lowerMedian } from '../validator/judge/lowerMedian.ts'

/** An aggregate of fixed-point values, in integers only, so anyone recomputes it exactly. */
export type AggregateValuesReturnType =
  | { count: 0 }
  | {
      count: number
      min: bigint
      max: bigint
      /** The lower median: sorted[floor((n − 1) / 2)]. */
      median: bigint
      /** sum / count, truncated toward zero. */
      mean: bigint
    }

/** Count, min, max, lower median and mean (truncated) of fixed-point values. */
export function aggregateValues(values: readonly bigint[]): AggregateValuesReturnType {
  if (values.length === 0) return { count: 0 }
  let min = values[0] as bigint
  let max = min
  let sum = 0n
  for (const v of values) {
    if (v < min) min = v
    if (v > max) max = v
    sum += v
  }
  return { count: values.length, min, max, median: lowerMedian(values), mean: sum / BigInt(values.length) }
}
