/**
 * Scrapes a depin server's GET /metrics and parses it with an independent Prometheus text-format
 * parser (parse-prometheus-text-format, prom2json's output), so a test reads what Prometheus would.
 */
import { createRequire } from 'node:module'

/** One family as the parser gives it: counters and gauges with `value`, histograms with buckets. */
export type MetricFamily = {
  name: string
  help: string
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
  metrics: {
    labels?: Record<string, string>
    value?: string
    buckets?: Record<string, string>
    count?: string
    sum?: string
  }[]
}

const parsePrometheusTextFormat = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => MetricFamily[]

export type Scrape = {
  families: Map<string, MetricFamily>
  /** The value of `name`'s series with exactly these labels (besides `role`), or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined
  /** The sum of `name`'s series whose labels include these. */
  sum(name: string, labels?: Record<string, string>): number
  /** A histogram's observation count (its `_count`) over the series whose labels include these. */
  count(name: string, labels?: Record<string, string>): number
}

export async function scrapeMetrics(baseUrl: string): Promise<Scrape & { contentType: string }> {
  const response = await fetch(`${baseUrl}/metrics`)
  if (!response.ok) throw new Error(`${baseUrl}/metrics answered ${response.status}`)
  const text = await response.text()
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]))
  // the parser folds a histogram's series into one whatever their labels (it knows only unlabelled
  // ones): read without the histograms' TYPE and HELP lines, each `_count`, `_sum`, `_bucket` series stays apart
  const histograms = new Set([...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]))
  const unfolded = text
    .split('\n')
    .filter((line) => !/^# (TYPE|HELP) /.test(line) || !histograms.has(line.split(' ')[2] as string))
    .join('\n')
  // untyped, a name's series come as consecutive families of one name each: merged here
  const samples = new Map<string, MetricFamily>()
  for (const family of parsePrometheusTextFormat(unfolded)) {
    const seen = samples.get(family.name)
    if (seen) seen.metrics.push(...family.metrics)
    else samples.set(family.name, family)
  }
  const matching = (name: string, labels: Record<string, string>, exact: boolean) =>
    (samples.get(name)?.metrics ?? []).filter((m) => {
      const own = Object.entries(m.labels ?? {}).filter(([k]) => k !== 'role')
      const wanted = Object.entries(labels)
      return wanted.every(([k, v]) => m.labels?.[k] === v) && (!exact || own.length === wanted.length)
    })
  return {
    contentType: response.headers.get('content-type') ?? '',
    families,
    value: (name, labels = {}) => {
      const [found] = matching(name, labels, true)
      return found?.value === undefined ? undefined : Number(found.value)
    },
    sum: (name, labels = {}) => matching(name, labels, false).reduce((s, m) => s + Number(m.value ?? 0), 0),
    count: (name, labels = {}) =>
      matching(`${name}_count`, labels, false).reduce((s, m) => s + Number(m.value ?? 0), 0),
  }
}
