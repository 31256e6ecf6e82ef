import { ConfigError, DepinError } from '../errors.ts'

/**
 * GETs `path` of the depin API at `api` and returns its JSON. An API that cannot be reached (or
 * answers something else than JSON) is API_UNREACHABLE; an `{ error }` answer becomes a
 * DepinError with the API's code and message, its details the HTTP status and whether the answer
 * is the data market's (x402: the route is paid).
 */
export async function askApi<T>(api: string, path: string): Promise<T> {
  let response: Response
  let body: T & { error?: { code: string; message: string }; x402Version?: number }
  try {
    response = await fetch(`${api}${path}`)
    body = (await response.json()) as typeof body
  } catch (cause) {
    throw new ConfigError('API_UNREACHABLE', `no depin API answers at ${api}: is \`depin up\` running?`, {
      cause,
    })
  }
  if (!response.ok) {
    throw new DepinError(
      body.error?.code ?? `HTTP_${response.status}`,
      body.error?.message ?? response.statusText,
      { details: { status: response.status, paid: body?.x402Version !== undefined } },
    )
  }
  return body
}
