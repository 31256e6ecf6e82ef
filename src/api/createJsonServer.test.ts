import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMetrics } from '../protocol/metrics.ts'
import { createJsonServer, serveMetrics } from './createJsonServer.ts'

// every refusal, the router's own included, is { error: { code, message, details } } (found by npm run fuzz)
const server = createJsonServer(1024)
server.get('/v1/rewards/:account', async () => ({ ok: true }))
server.post('/v1/echo', async (request) => request.body)
beforeAll(() => server.ready())
afterAll(() => server.close())

const answer = async (method: 'GET' | 'POST', url: string, payload?: string) => {
  const response = await server.inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload, headers: { 'content-type': 'application/json' } }),
  })
  return {
    status: response.statusCode,
    json: response.json() as { error?: { code?: string; details?: unknown } },
  }
}

describe('createJsonServer', () => {
  it('answers routes it does not have, and URLs its router cannot take, with a typed error', async () => {
    for (const [method, url, status, code] of [
      ['GET', '/v1/nowhere', 404, 'NOT_FOUND'],
      ['POST', '/v1/rewards/0x12', 404, 'NOT_FOUND'],
      ['GET', '/v1/rewards/%zz', 400, 'INVALID_URL'],
      ['GET', `/v1/rewards/${'a'.repeat(101)}`, 414, 'URL_TOO_LONG'],
    ] as const) {
      const { status: got, json } = await answer(method, url, method === 'POST' ? '{}' : undefined)
      expect(got, url).toBe(status)
      expect(json.error, url).toMatchObject({ code, details: {} })
    }
  })

  it('refuses bodies that are not JSON, or too large, with a typed error', async () => {
    expect(await answer('POST', '/v1/echo', 'x'.repeat(2048))).toMatchObject({
      status: 413,
      json: { error: { code: 'BODY_TOO_LARGE' } },
    })
    const text = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      payload: 'hi',
      headers: { 'content-type': 'text/plain' },
    })
    expect(text.statusCode).toBe(415)
    expect(text.json()).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } })
  })
})

describe('the request latency histogram', () => {
  it('times every route by its pattern, except those configured not to be (streams)', async () => {
    const metrics = createMetrics('test')
    const timed = createJsonServer(1024, metrics)
    timed.get('/v1/items/:id', async () => ({ ok: true }))
    timed.get('/v1/stream', { config: { timed: false } }, async () => ({ ok: true }))
    serveMetrics(timed, metrics)
    try {
      for (const url of ['/v1/items/1', '/v1/items/2', '/v1/stream'])
        expect((await timed.inject({ method: 'GET', url })).statusCode).toBe(200)
      const text = (await timed.inject({ method: 'GET', url: '/metrics' })).body
      expect(text).toMatch(
        /depin_http_request_duration_seconds_count\{[^}]*route="\/v1\/items\/:id"[^}]*\} 2/,
      )
      expect(text).not.toContain('route="/v1/stream"')
    } finally {
      await timed.close()
    }
  })
})
