/**
 * How the fuzzer reaches a server: over loopback HTTP through a pool of keep-alive connections,
 * or in-process through fastify's `inject` (the same routes, hooks and handlers, no socket) for a
 * share of the inputs when HTTP alone would be too slow.
 */
import http from 'node:http'
import type { FastifyInstance } from 'fastify'

export type FuzzRequest = {
  method: 'GET' | 'POST'
  /** Path and query, every byte outside printable ASCII already percent-encoded. */
  path: string
  headers?: Record<string, string>
  body?: Buffer
  /**
   * The answer may be a never-ending event stream: when it is (text/event-stream), resolve once
   * its status and headers arrived, and drop the connection. Always over HTTP.
   */
  mayStream?: boolean
}

export type FuzzAnswer =
  | { type: 'answer'; status: number; contentType: string; body: Buffer; via: 'http' | 'inject' }
  | { type: 'failed'; error: Error; via: 'http' | 'inject' }

export type Transport = {
  send(request: FuzzRequest, inProcess: boolean): Promise<FuzzAnswer>
  close(): void
}

/** Every request waits at most this long for its answer (a hung server is a finding). */
const TIMEOUT_MS = 30_000

/** A transport to one server: `baseUrl` for HTTP (at most `sockets` connections), `server` for inject. */
export function createTransport(baseUrl: string, server: FastifyInstance, sockets: number): Transport {
  const { hostname, port } = new URL(baseUrl)
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets })

  function overHttp(request: FuzzRequest): Promise<FuzzAnswer> {
    return new Promise((resolve) => {
      let settled = false
      const settle = (answer: FuzzAnswer) => {
        if (settled) return
        settled = true
        resolve(answer)
      }
      const headers: Record<string, string | number> = { ...request.headers }
      if (request.body) headers['content-length'] = request.body.length
      let outgoing: http.ClientRequest
      try {
        outgoing = http.request(
          {
            host: hostname,
            port,
            method: request.method,
            path: request.path,
            headers,
            agent,
            timeout: TIMEOUT_MS,
          },
          (response) => {
            const status = response.statusCode ?? 0
            const contentType = String(response.headers['content-type'] ?? '')
            if (request.mayStream && contentType.startsWith('text/event-stream')) {
              settle({ type: 'answer', status, contentType, body: Buffer.alloc(0), via: 'http' })
              outgoing.destroy()
              return
            }
            const chunks: Buffer[] = []
            response.on('data', (chunk: Buffer) => chunks.push(chunk))
            response.on('end', () =>
              settle({ type: 'answer', status, contentType, body: Buffer.concat(chunks), via: 'http' }),
            )
            response.on('error', (error) => settle({ type: 'failed', error, via: 'http' }))
          },
        )
      } catch (error) {
        settle({ type: 'failed', error: error as Error, via: 'http' })
        return
      }
      outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)))
      outgoing.on('error', (error) => settle({ type: 'failed', error, via: 'http' }))
      outgoing.end(request.body)
    })
  }

  async function inProcess(request: FuzzRequest): Promise<FuzzAnswer> {
    try {
      const response = await server.inject({
        method: request.method,
        url: request.path,
        headers: request.headers ?? {},
        ...(request.body ? { payload: request.body } : {}),
      })
      return {
        type: 'answer',
        status: response.statusCode,
        contentType: String(response.headers['content-type'] ?? ''),
        body: response.rawPayload,
        via: 'inject',
      }
    } catch (error) {
      return { type: 'failed', error: error as Error, via: 'inject' }
    }
  }

  return {
    send: (request, inProcessWanted) =>
      inProcessWanted && !request.mayStream ? inProcess(request) : overHttp(request),
    close: () => agent.destroy(),
  }
}

/** Percent-encodes what may not travel raw in a request target (spaces, controls, non-ASCII). */
export function encodeTarget(text: string): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte > 0x20 && byte < 0x7f
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
