import { describe, expect, it } from 'vitest'
import { createMetrics } from './metrics.ts'

describe('a scrape of the metrics', () => {
  it('is collected at most once a second, however many scrapes arrive', async () => {
    const metrics = createMetrics('test')
    let collections = 0
    metrics.gauge('depin_test_collections', 'how often the collect ran', [], (gauge) => {
      collections++
      gauge.set(collections)
    })
    const scrapes = await Promise.all(Array.from({ length: 50 }, () => metrics.scrape()))
    for (let i = 0; i < 50; i++) await metrics.scrape()
    expect(collections).toBe(1)
    expect(scrapes[0]?.body).toContain('depin_test_collections{role="test"} 1')
    await new Promise((resolve) => setTimeout(resolve, 1_050))
    expect((await metrics.scrape()).body).toContain('depin_test_collections{role="test"} 2')
  })

  it('tries again at the next scrape after a collection that failed', async () => {
    const metrics = createMetrics('test')
    let fail = true
    metrics.gauge('depin_test_flaky', 'fails once', [], (gauge) => {
      if (fail) throw new Error('store closed')
      gauge.set(7)
    })
    await expect(metrics.scrape()).rejects.toThrow('store closed')
    fail = false
    expect((await metrics.scrape()).body).toContain('depin_test_flaky{role="test"} 7')
  })

  it('hands out the metric registered under a name again, and refuses it as another kind or with other labels', () => {
    const metrics = createMetrics('test')
    const counter = metrics.counter('depin_test_things_total', 'things', ['kind'])
    expect(metrics.counter('depin_test_things_total', 'things', ['kind'])).toBe(counter)
    expect(() => metrics.gauge('depin_test_things_total', 'things', ['kind'])).toThrow(
      /another kind or with other labels/,
    )
    expect(() => metrics.counter('depin_test_things_total', 'things', ['other'])).toThrow(
      /other labels \(kind\)/,
    )
  })
})
