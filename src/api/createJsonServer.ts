import Fastify, { type FastifyInstance } from 'fastify'
import { DepinError } from '../errors.ts'

/**
 * A fastify server for a JSON API of depin: JSON bodies only (anything else is a 415), and every
 * error turned, at the edge, into `{ error: { code, message, details } }` with a stable code.
 * @param bodyLimit largest request body in bytes (a larger one is a 413 BODY_TOO_LARGE)
 */
export function createJsonServer(bodyLimit: number): FastifyInstance {
  const server = Fastify({ bodyLimit, logger: false })
  server.removeContentTypeParser('text/plain')
  server.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
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
    const details = error instanceof DepinError && status < 500 ? error.details : {}
    reply
      .status(status)
      .send({ error: { code, message: status < 500 ? error.message : 'internal error', details } })
  })
  return server
}
