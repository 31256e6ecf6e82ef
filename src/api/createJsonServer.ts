import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { DepinError } from '../errors.ts'
import type { Metrics } from '../protocol/metrics.ts'

/**
 * A fastify server for a JSON API of depin: JSON bodies only (anything else is a 415), and every
 * error turned, at the edge, into `{ error: { code, message, details } }` with a stable code.
 * With `metrics`, it times every request it answers by method, route pattern and status
 * (`depin_http_request_duration_seconds`), except on routes with `config: { timed: false }`
 * (streams); `serveMetrics` serves them.
 * @param bodyLimit largest request body in bytes (a larger one is a 413 BODY_TOO_LARGE)
 */
export function createJsonServer(bodyLimit: number, metrics?: Metrics): FastifyInstance {
  const server = Fastify({
    bodyLimit,
    logger: false,
    // a URL the router cannot take (bad percent-encoding, a path parameter past 100 characters)
    frameworkErrors: (error, _request, frameworkReply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      // the framework's reply type carries route generics that no route of ours has here
      const reply = frameworkReply as unknown as FastifyReply
      reply.status(tooLong ? 414 : 400).send({
        error: { code: tooLong ? 'URL_TOO_LONG' : 'INVALID_URL', message: error.message, details: {} },
      })
    },
  })
  server.removeContentTypeParser('text/plain')
  server.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}`, details: {} },
    })
  })
  server.setErrorHandler((error: ServerError, _request, reply) => {
    const { status, code } = errorAnswerOf(error)
    const details = error instanceof DepinError && status < 500 ? error.details : {}
    reply
      .status(status)
      .send({ error: { code, message: status < 500 ? error.message : 'internal error', details } })
  })
  if (metrics) {
    const latency = metrics.histogram(
      'depin_http_request_duration_seconds',
      'Time to answer an HTTP request, by method, route pattern and status',
      ['method', 'route', 'status'],
    )
    server.addHook('onResponse', async (request, reply) => {
      // a route with `config: { timed: false }` (a stream, open for minutes) is not timed
      if ((request.routeOptions.config as { timed?: boolean }).timed === false) return
      latency.observe(
        {
          method: request.method,
          // the pattern, never the URL: one series per route, whatever attackers send
          route: request.routeOptions.url ?? 'unmatched',
          status: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      )
    })
  }
  return server
}

type ServerError = Error & { statusCode?: number; code?: string }

/** The status and stable code a request's error is answered with (the error handler's). */
export function errorAnswerOf(error: ServerError): { status: number; code: string } {
  const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500
  const code =
    error instanceof DepinError
      ? error.code
      : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? 'BODY_TOO_LARGE'
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'UNSUPPORTED_MEDIA_TYPE'
          : status < 500
            ? 'INVALID_BODY'
            : 'INTERNAL'
  return { status, code }
}

/**
 * Serves `metrics` at `GET /metrics` (Prometheus' text format). Register it after the server's
 * rate limit, so the limit covers it (@fastify/rate-limit covers routes added after it).
 */
export function serveMetrics(server: FastifyInstance, metrics: Metrics): void {
  server.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.scrape()
    return reply.header('content-type', contentType).send(body)
  })
}
