/**
 * A process's Prometheus metrics (prom-client): one registry per context, labelled with the
 * process's role, with Node's default process metrics (`depin_process_*`, `depin_nodejs_*`). Each
 * service declares its own metrics through `counter`/`gauge`/`histogram`, which return the one
 * already registered under that name, so services sharing a context share their metrics. Every
 * JSON server of depin times its requests (`depin_http_request_duration_seconds`, createJsonServer)
 * and serves them at `GET /metrics` (serveMetrics, behind the server's rate limit where it has one).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export type Metrics = {
  readonly registry: Registry
  counter<L extends string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>
  /** A gauge; `collect` sets its value(s) at each scrape. */
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    collect?: (gauge: Gauge<L>) => void,
  ): Gauge<L>
  histogram<L extends string>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    buckets?: number[],
  ): Histogram<L>
  /**
   * The text exposition format, and its content type. Collected at most once a second (a scrape
   * runs every metric's collect: store queries, the peer list), so a flood of scrapes costs
   * little more than one; Prometheus scrapes every 15 s or so.
   */
  scrape(): Promise<{ contentType: string; body: string }>
}

/** How long one collection answers scrapes for. */
const SCRAPE_REUSE_MS = 1000

/** Seconds, from a millisecond to two minutes: request latencies and judging times alike. */
export const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/**
 * @example const metrics = createMetrics('gateway')
 * metrics.counter('depin_gateway_readings_accepted_total', 'readings accepted', ['transport']).inc({ transport: 'http' })
 */
export function createMetrics(role: string): Metrics {
  const registry = new Registry()
  registry.setDefaultLabels({ role })
  collectDefaultMetrics({ register: registry, prefix: 'depin_' })
  let lastScrape: { at: number; body: Promise<{ contentType: string; body: string }> } | undefined
  /** The metric already registered under `name`: of the same kind and labels, or a mistake said loudly. */
  const existing = <M>(
    name: string,
    kind: typeof Counter | typeof Gauge | typeof Histogram,
    labelNames: readonly string[],
  ): M | undefined => {
    const metric = registry.getSingleMetric(name)
    if (metric === undefined) return undefined
    const labels = (metric as unknown as { labelNames?: readonly string[] }).labelNames ?? []
    if (!(metric instanceof kind) || labels.join(',') !== labelNames.join(','))
      throw new Error(
        `metric ${name} is registered already as another kind or with other labels (${labels.join(', ')})`,
      )
    return metric as M
  }
  return {
    registry,
    counter: (name, help, labelNames = []) =>
      existing(name, Counter, labelNames) ?? new Counter({ name, help, labelNames, registers: [registry] }),
    gauge: (name, help, labelNames = [], collect) =>
      existing(name, Gauge, labelNames) ??
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        ...(collect
          ? {
              collect() {
                collect(this)
              },
            }
          : {}),
      }),
    histogram: (name, help, labelNames = [], buckets = SECONDS_BUCKETS) =>
      existing(name, Histogram, labelNames) ??
      new Histogram({ name, help, labelNames, buckets, registers: [registry] }),
    scrape: () => {
      const now = Date.now()
      if (!lastScrape || now - lastScrape.at >= SCRAPE_REUSE_MS) {
        const body = registry.metrics().then((text) => ({ contentType: registry.contentType, body: text }))
        lastScrape = { at: now, body }
        // a failed collection is not kept: the next scrape tries again
        body.catch(() => {
          if (lastScrape?.body === body) lastScrape = undefined
        })
      }
      return lastScrape.body
    },
  }
}
