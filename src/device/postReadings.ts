import { z } from 'zod'
import { ConfigError } from '../errors.ts'
import { type SignedReading, toReadingJson } from '../readings/reading.ts'

/** The most readings one request to the gateway may carry. */
export const MAX_READINGS_PER_REQUEST = 500

/** Throws a RangeError for more readings than one request may carry (a caller's bug, not the network's). */
export function checkRequestSize(readings: readonly unknown[]): void {
  if (readings.length > MAX_READINGS_PER_REQUEST) {
    throw new RangeError(`at most ${MAX_READINGS_PER_REQUEST} readings per request, got ${readings.length}`)
  }
}

/** The gateway's verdict on one reading of a request, by its index in the request. */
export type GatewayResult =
  | { index: number; status: 'accepted' }
  | { index: number; status: 'rejected'; reason: string; message: string }

export type PostReadingsParameters = {
  gatewayUrl: string
  readings: readonly SignedReading[]
  /** Milliseconds before the request counts as failed (default 10 000). */
  timeoutMs?: number
}

/**
 * How readings reach a gateway (HTTP: `httpTransport`; MQTT: `createMqttTransport`). `send`
 * takes at most `MAX_READINGS_PER_REQUEST` readings and never throws for what the network or
 * the gateway does: the answer says whether resending can help.
 */
export type ReadingTransport = {
  send(readings: readonly SignedReading[]): Promise<PostReadingsReturnType>
}

/** Sends readings with `POST {gatewayUrl}/v1/readings`. */
export const httpTransport = (gatewayUrl: string, timeoutMs?: number): ReadingTransport => ({
  send: (readings) => postReadings({ gatewayUrl, readings, ...(timeoutMs ? { timeoutMs } : {}) }),
})

/** The transport given, or HTTP to `gatewayUrl`; a ConfigError when there is neither. */
export function transportOf({
  transport,
  gatewayUrl,
  timeoutMs,
}: {
  transport?: ReadingTransport | undefined
  gatewayUrl?: string | undefined
  timeoutMs?: number | undefined
}): ReadingTransport {
  if (transport) return transport
  if (gatewayUrl === undefined) {
    throw new ConfigError('DEVICE_NO_GATEWAY', 'readings need a gatewayUrl or a transport to go through')
  }
  return httpTransport(gatewayUrl, timeoutMs)
}

export type PostReadingsReturnType =
  /** The gateway answered for every reading (200): `results[i]` is the verdict on `readings[i]`. */
  | { type: 'answered'; results: GatewayResult[]; accepted: number; rejected: number }
  /** The gateway refused the request as a whole (4xx other than 408/429): resending cannot help. */
  | { type: 'refused'; status: number; code: string; message: string }
  /** No answer for the readings (network error, timeout, 5xx, 408, 429, unreadable answer): resend later. */
  | { type: 'unavailable'; status: number | undefined; message: string }

const resultsSchema = z.object({
  results: z.array(
    z.discriminatedUnion('status', [
      z.object({ index: z.number().int().nonnegative(), status: z.literal('accepted') }),
      z.object({
        index: z.number().int().nonnegative(),
        status: z.literal('rejected'),
        reason: z.string(),
        message: z.string(),
      }),
    ]),
  ),
  accepted: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
})
const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) })

/**
 * Posts signed readings to a gateway: `POST {gatewayUrl}/v1/readings` with
 * `{ "readings": SignedReadingJson[] }` (at most `MAX_READINGS_PER_REQUEST`). Never throws for
 * what the network or the gateway does: the answer says whether resending can help.
 */
export async function postReadings({
  gatewayUrl,
  readings,
  timeoutMs = 10_000,
}: PostReadingsParameters): Promise<PostReadingsReturnType> {
  checkRequestSize(readings)
  const url = `${gatewayUrl.replace(/\/+$/, '')}/v1/readings`
  let response: Response
  let body: unknown
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ readings: readings.map(toReadingJson) }),
      signal: AbortSignal.timeout(timeoutMs),
    })
    body = await response.json().catch(() => undefined)
  } catch (cause) {
    return { type: 'unavailable', status: undefined, message: describeFailure(url, cause) }
  }
  return readGatewayAnswer({ status: response.status, body, count: readings.length, source: url })
}

/**
 * What a gateway's answer means for the readings it was sent (over HTTP or MQTT): a verdict
 * per reading (status 200), a refusal of the whole batch (a 4xx other than 408/429), or no
 * usable answer (resend later).
 * @param count how many readings were sent
 * @param source where the answer came from, for messages
 */
export function readGatewayAnswer({
  status,
  body,
  count,
  source,
}: {
  status: number
  body: unknown
  count: number
  source: string
}): PostReadingsReturnType {
  if (status === 200) {
    const parsed = resultsSchema.safeParse(body)
    if (parsed.success && coversEveryReading(parsed.data.results, count)) {
      const results = [...parsed.data.results].sort((a, b) => a.index - b.index)
      const accepted = results.filter((r) => r.status === 'accepted').length
      return { type: 'answered', results, accepted, rejected: results.length - accepted }
    }
    // The gateway may have stored some of them; resending is safe (a duplicate is refused as a replay).
    return { type: 'unavailable', status, message: `${source} answered 200 without a verdict per reading` }
  }
  const error = errorSchema.safeParse(body)
  const code = error.success ? error.data.error.code : `HTTP_${status}`
  const message = error.success ? error.data.error.message : `${source} answered ${status}`
  if (status >= 500 || status === 408 || status === 429) return { type: 'unavailable', status, message }
  return { type: 'refused', status, code, message }
}

function coversEveryReading(results: readonly GatewayResult[], count: number): boolean {
  if (results.length !== count) return false
  const seen = new Set(results.map((r) => r.index))
  return seen.size === count && results.every((r) => r.index < count)
}

function describeFailure(url: string, cause: unknown): string {
  if (cause instanceof Error && cause.name === 'TimeoutError') return `${url} did not answer in time`
  const reason =
    cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : ''
  return `cannot reach ${url}${reason ? `: ${reason}` : ''}`
}
