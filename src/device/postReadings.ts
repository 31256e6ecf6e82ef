import { randomBytes } from 'node:crypto'
import { bytesToHex, type Hex } from 'viem'
import { z } from 'zod'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { ConfigError } from '../errors.ts'
import { type SignedReading, toRecordJson } from '../readings/reading.ts'
import { READING_KIND, type RecordKind } from '../readings/recordKinds.ts'
import type { DeviceTransportEvent, VerdictIgnoredCode, VerdictVerifier } from './createVerdictVerifier.ts'

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
  /** `duplicate`: a resend of the last reading it accepted from the device, acknowledged again. */
  | { index: number; status: 'accepted'; duplicate?: true | undefined }
  | { index: number; status: 'rejected'; reason: string; message: string }

export type PostReadingsParameters = {
  gatewayUrl: string
  readings: readonly SignedReading[]
  /** Checks that an answer is a listed gateway's signed verdict on this request (`createVerdictVerifier`). */
  verifier: VerdictVerifier
  /** Milliseconds before the request counts as failed (default 10 000). */
  timeoutMs?: number
  /** Told of each answer ignored (forged, unsigned, another request's, an unlisted signer's). */
  onEvent?: (event: DeviceTransportEvent) => void
  /** The use case's record kinds, to write each record's kind on the wire (default: Reading). */
  kinds?: readonly RecordKind[]
}

/**
 * How readings reach a gateway (HTTP: `httpTransport`; MQTT: `createMqttTransport`). `send`
 * takes at most `MAX_READINGS_PER_REQUEST` readings and never throws for what the network or
 * the gateway does: the answer says whether resending can help.
 */
export type ReadingTransport = {
  send(readings: readonly SignedReading[]): Promise<PostReadingsReturnType>
}

/** Sends readings with `POST {gatewayUrl}/v1/readings`, believing only verdicts `verifier` checks. */
export const httpTransport = ({
  gatewayUrl,
  verifier,
  timeoutMs,
  onEvent,
  kinds,
}: Omit<PostReadingsParameters, 'readings'>): ReadingTransport => ({
  send: (readings) =>
    postReadings({
      gatewayUrl,
      readings,
      verifier,
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(onEvent ? { onEvent } : {}),
      ...(kinds ? { kinds } : {}),
    }),
})

/**
 * The transport given, or HTTP to `gatewayUrl` checked by `verifier`; a ConfigError when there
 * is neither, or HTTP without a verifier.
 */
export function transportOf({
  transport,
  gatewayUrl,
  timeoutMs,
  verifier,
  onEvent,
  kinds,
}: {
  transport?: ReadingTransport | undefined
  gatewayUrl?: string | undefined
  timeoutMs?: number | undefined
  verifier?: VerdictVerifier | undefined
  onEvent?: ((event: DeviceTransportEvent) => void) | undefined
  kinds?: readonly RecordKind[] | undefined
}): ReadingTransport {
  if (transport) return transport
  if (gatewayUrl === undefined) {
    throw new ConfigError('DEVICE_NO_GATEWAY', 'readings need a gatewayUrl or a transport to go through')
  }
  if (!verifier) {
    throw new ConfigError(
      'DEVICE_NO_GATEWAY_LIST',
      'sending over HTTP needs the gateways whose verdicts count (gateways: openGatewayList(…))',
    )
  }
  return httpTransport({
    gatewayUrl,
    verifier,
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(onEvent ? { onEvent } : {}),
    ...(kinds ? { kinds } : {}),
  })
}

export type PostReadingsReturnType =
  /** The gateway answered for every reading (200): `results[i]` is the verdict on `readings[i]`. */
  | { type: 'answered'; results: GatewayResult[]; accepted: number; rejected: number }
  /** The gateway refused the request as a whole (4xx other than 408/429): resending cannot help. */
  | { type: 'refused'; status: number; code: string; message: string }
  /**
   * No answer for the readings that counts (network error, timeout, 5xx, 408, 429, unreadable
   * answer, or an answer that is no listed gateway's signed verdict on this request, `ignored`
   * naming why): resend later.
   */
  | { type: 'unavailable'; status: number | undefined; message: string; ignored?: VerdictIgnoredCode[] }

const resultsSchema = z.object({
  results: z.array(
    z.discriminatedUnion('status', [
      z.object({
        index: z.number().int().nonnegative(),
        status: z.literal('accepted'),
        duplicate: z.literal(true).optional(),
      }),
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
 * A request of readings as sent, over HTTP or MQTT: `{ "id", "readings": SignedReadingJson[] }`
 * with a fresh random id, and the keccak-256 of its bytes, which the gateway's signed verdict
 * must name (so an answer holds for this request only).
 */
export async function readingsRequest(
  readings: readonly SignedReading[],
  kinds: readonly RecordKind[] = [READING_KIND],
): Promise<{
  id: string
  payload: string
  request: Hex
}> {
  const keccak = await loadKeccak256()
  const id = randomBytes(12).toString('hex')
  const payload = JSON.stringify({ id, readings: readings.map((r) => toRecordJson(r, kinds)) })
  return { id, payload, request: bytesToHex(keccak(Buffer.from(payload, 'utf8'))) }
}

/**
 * Posts signed readings to a gateway: `POST {gatewayUrl}/v1/readings` with
 * `{ "id", "readings": SignedReadingJson[] }` (at most `MAX_READINGS_PER_REQUEST`). Never throws
 * for what the network or the gateway does: the answer says whether resending can help. An
 * answer that would drop readings (accepted, rejected, refused) counts only when `verifier`
 * finds it a listed gateway's signed verdict on this request; any other is reported to
 * `onEvent` and taken as no answer (`unavailable`: the readings stay queued).
 */
export async function postReadings({
  gatewayUrl,
  readings,
  verifier,
  timeoutMs = 10_000,
  onEvent,
  kinds,
}: PostReadingsParameters): Promise<PostReadingsReturnType> {
  checkRequestSize(readings)
  const url = `${gatewayUrl.replace(/\/+$/, '')}/v1/readings`
  const { payload, request } = await readingsRequest(readings, kinds)
  let response: Response | undefined
  let body: unknown
  // a connection reset before any answer (typically a kept-alive connection the gateway closed
  // just as this request went out) is tried once more at once: resending is safe, since the
  // gateway acknowledges a reading it already stored as a duplicate
  for (let attempt = 1; response === undefined; attempt++) {
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
      })
      body = await response.json().catch(() => undefined)
    } catch (cause) {
      if (attempt === 1 && isConnectionReset(cause)) continue
      return { type: 'unavailable', status: undefined, message: describeFailure(url, cause) }
    }
  }
  const answer = await verifier.verify({ readings, request, status: response.status, body, source: url })
  if (answer.type !== 'ignored') return answer
  const { type: _, ...ignored } = answer
  onEvent?.({ type: 'verdict_ignored', ...ignored, source: url })
  return {
    type: 'unavailable',
    status: response.status,
    message: `${answer.code}: ${answer.message}`,
    ignored: [answer.code],
  }
}

/** Whether a fetch failed because the connection was reset or closed before any answer. */
function isConnectionReset(error: unknown): boolean {
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined) : undefined
  return cause?.code === 'ECONNRESET' || cause?.code === 'UND_ERR_SOCKET' || cause?.code === 'EPIPE'
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
