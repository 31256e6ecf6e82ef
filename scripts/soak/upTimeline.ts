/**
 * When roles were up, as the soak recorded it: each role a list of spans (from its started line
 * to its kill or exit). Counts are piecewise constant between span boundaries, so a minimum over
 * a window needs only the window's start and the boundaries inside it.
 */
import type { UpSpan } from './roleProcess.ts'

const covers = (span: UpSpan, t: number) => span.from <= t && (span.to === undefined || t < span.to)

/** How many of `roles` were up at `t`. */
export function upAt(roles: readonly (readonly UpSpan[])[], t: number): number {
  return roles.filter((spans) => spans.some((s) => covers(s, t))).length
}

/** The fewest of `roles` up at any moment of [from, to]. */
export function fewestUpBetween(roles: readonly (readonly UpSpan[])[], from: number, to: number): number {
  const moments = [from]
  for (const spans of roles)
    for (const s of spans) {
      if (s.from > from && s.from <= to) moments.push(s.from)
      if (s.to !== undefined && s.to > from && s.to <= to) moments.push(s.to)
    }
  return Math.min(...moments.map((t) => upAt(roles, t)))
}

/** Whether one role was up throughout [from, to] (one span covers it all). */
export function upThroughout(spans: readonly UpSpan[], from: number, to: number): boolean {
  return spans.some((s) => s.from <= from && (s.to === undefined || s.to > to))
}

/**
 * The maximal intervals of [from, to] in which at least `needed` of `roles` were up, and the
 * total time in which fewer were.
 */
export function intervalsWithAtLeast(
  roles: readonly (readonly UpSpan[])[],
  needed: number,
  from: number,
  to: number,
): { intervals: { from: number; to: number }[]; shortMs: number } {
  const moments = new Set([from])
  for (const spans of roles)
    for (const s of spans) {
      if (s.from > from && s.from < to) moments.add(s.from)
      if (s.to !== undefined && s.to > from && s.to < to) moments.add(s.to)
    }
  const sorted = [...moments].sort((a, b) => a - b)
  const intervals: { from: number; to: number }[] = []
  let shortMs = 0
  sorted.forEach((start, i) => {
    const end = sorted[i + 1] ?? to
    if (upAt(roles, start) >= needed) {
      const open = intervals.at(-1)
      if (open && open.to === start) open.to = end
      else intervals.push({ from: start, to: end })
    } else shortMs += end - start
  })
  return { intervals, shortMs }
}
