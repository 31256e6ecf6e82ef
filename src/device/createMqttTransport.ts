import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import type { SignedReading } from '../readings/reading.ts'
import { DEFAULT_TOPIC_PREFIX, readingsTopic, verdictsTopic } from '../readings/readingTopics.ts'
import type { RecordKind } from '../readings/recordKinds.ts'
import type { DeviceTransportEvent, VerdictIgnoredCode, VerdictVerifier } from './createVerdictVerifier.ts'
import {
  checkRequestSize,
  type PostReadingsReturnType,
  type ReadingTransport,
  readingsRequest,
} from './postReadings.ts'

export type CreateMqttTransportParameters = {
  /** The broker the gateway listens on, e.g. `mqtt://127.0.0.1:1883`. */
  brokerUrl: string
  /**
   * Checks that an answer is a listed gateway's signed verdict on the request
   * (`createVerdictVerifier`); any other answer is ignored and the wait goes on.
   */
  verifier: VerdictVerifier
  /** Topic prefix shared with the gateway (default `depin/v1`). */
  topicPrefix?: string
  /** Milliseconds to wait for the gateway's answer (default 10 000). */
  timeoutMs?: number
  /** Broker credentials, when it asks for them. */
  username?: string
  password?: string
  /**
   * Told of each message ignored on the verdicts topic (forged, unsigned, another request's, an
   * unlisted signer's, not an answer at all) and of the connection's errors.
   */
  onEvent?: (event: DeviceTransportEvent) => void
  /** The use case's record kinds, to write each record's kind on the wire (default: Reading). */
  kinds?: readonly RecordKind[]
}

export type MqttTransport = ReadingTransport & {
  /** Disconnects; sends still waiting get an `unavailable` answer. */
  close(): Promise<void>
}

/** A request waiting for its answer. */
type Waiting = {
  readings: readonly SignedReading[]
  request: `0x${string}`
  /** Why answers to it were ignored so far. */
  ignored: VerdictIgnoredCode[]
  resolve: (answer: PostReadingsReturnType) => void
}

/**
 * Sends signed readings to a gateway through an MQTT broker (protocol in
 * `src/readings/readingTopics.ts`): one connection, however many devices share it; each
 * `send` publishes QoS 1 and waits for the gateway's verdicts. Connects in the background and
 * reconnects by itself; while the broker or the gateway is away, sends answer `unavailable`,
 * so a device keeps its readings queued.
 *
 * Anyone who can publish on the broker can answer on a verdicts topic, so an answer counts only
 * when `verifier` finds it a listed gateway's signed verdict on exactly this request. Any other
 * message there — forged, unsigned, for another request, not JSON, `null`, empty — is reported
 * to `onEvent` and ignored, and the send keeps waiting for the real answer until `timeoutMs`:
 * an impostor answering first does not end the wait.
 * @example
 * const verifier = createVerdictVerifier({ chainId, deviceRegistry, gateways: openGatewayList({ rpcUrl, deviceRegistry }) })
 * const transport = createMqttTransport({ brokerUrl: 'mqtt://127.0.0.1:1883', verifier })
 * const device = createDevice({ ..., transport })
 */
export function createMqttTransport(parameters: CreateMqttTransportParameters): MqttTransport {
  const { brokerUrl, verifier, timeoutMs = 10_000, onEvent } = parameters
  const prefix = parameters.topicPrefix ?? DEFAULT_TOPIC_PREFIX
  const replyId = randomBytes(12).toString('hex')
  const topic = verdictsTopic(prefix, replyId)
  const pending = new Map<string, Waiting>()
  const client = mqtt.connect(brokerUrl, {
    clientId: `depin-device-${replyId}`,
    clean: true,
    reconnectPeriod: 1_000,
    connectTimeout: Math.min(timeoutMs, 10_000),
    ...(parameters.username !== undefined ? { username: parameters.username } : {}),
    ...(parameters.password !== undefined ? { password: parameters.password } : {}),
  })
  /** Reports an event; a throwing listener must not break the connection's handlers. */
  const report = (event: DeviceTransportEvent) => {
    try {
      onEvent?.(event)
    } catch {
      // the listener's own failure is its business
    }
  }
  let lastError = ''
  client.on('error', (error) => {
    // reported once per outage (mqtt.js retries every second)
    if (lastError === error.message) return
    lastError = error.message
    report({
      type: 'transport_error',
      code: 'MQTT_CONNECTION_ERROR',
      message: error.message,
      source: brokerUrl,
    })
  })
  // the answer topic is subscribed before any request goes out (and again after each reconnect)
  let subscribed = false
  client.on('connect', () => {
    lastError = ''
    client.subscribe(topic, { qos: 1 }, (error) => {
      if (!error) {
        subscribed = true
        return
      }
      lastError = error.message
      report({
        type: 'transport_error',
        code: 'MQTT_SUBSCRIBE_FAILED',
        message: error.message,
        source: brokerUrl,
      })
    })
  })
  client.on('close', () => {
    subscribed = false
  })
  client.on('message', (_topic, payload) => {
    const answer = answerOf(payload)
    if (!answer) {
      const message = `a message on ${topic} that is no answer of a gateway (${payload?.length ?? 0} bytes)`
      report({ type: 'verdict_ignored', code: 'VERDICT_MALFORMED', message, source: brokerUrl })
      return
    }
    const waiting = pending.get(answer.id)
    if (!waiting) return // late (already answered, or timed out) or another transport's: ignored
    verifier
      .verify({
        readings: waiting.readings,
        request: waiting.request,
        status: answer.status,
        body: answer.body,
        source: brokerUrl,
      })
      .then(
        (verified) => {
          if (pending.get(answer.id) !== waiting) return // answered meanwhile
          if (verified.type === 'ignored') {
            waiting.ignored.push(verified.code)
            const { type: _, ...ignored } = verified
            report({ type: 'verdict_ignored', ...ignored, source: brokerUrl })
            return // keep waiting: the gateway's own answer may still come
          }
          pending.delete(answer.id)
          waiting.resolve(verified)
        },
        (error: unknown) => {
          const message = `cannot check an answer: ${error instanceof Error ? error.message : String(error)}`
          report({ type: 'verdict_ignored', code: 'VERDICT_MALFORMED', message, source: brokerUrl })
        },
      )
  })

  const unavailable = (message: string, ignored: VerdictIgnoredCode[] = []): PostReadingsReturnType => ({
    type: 'unavailable',
    status: undefined,
    message,
    ...(ignored.length > 0 ? { ignored } : {}),
  })
  const whenSubscribed = async (deadline: number) => {
    while (!subscribed && Date.now() < deadline && !client.disconnecting) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return subscribed
  }

  return {
    async send(readings) {
      checkRequestSize(readings)
      const deadline = Date.now() + timeoutMs
      if (!(await whenSubscribed(deadline))) {
        return unavailable(`cannot reach the MQTT broker ${brokerUrl}${lastError ? `: ${lastError}` : ''}`)
      }
      const { id, payload, request } = await readingsRequest(readings, parameters.kinds)
      return new Promise<PostReadingsReturnType>((resolve) => {
        const waiting: Waiting = {
          readings,
          request,
          ignored: [],
          resolve: (answer) => {
            clearTimeout(timer)
            resolve(answer)
          },
        }
        const timer = setTimeout(
          () => {
            pending.delete(id)
            const ignored =
              waiting.ignored.length > 0 ? ` (ignored: ${[...new Set(waiting.ignored)].join(', ')})` : ''
            resolve(
              unavailable(
                `no answer from a gateway through ${brokerUrl} in ${timeoutMs} ms${ignored}`,
                waiting.ignored,
              ),
            )
          },
          Math.max(0, deadline - Date.now()),
        )
        pending.set(id, waiting)
        client.publish(readingsTopic(prefix, replyId), payload, { qos: 1 }, (error) => {
          if (!error || pending.get(id) !== waiting) return
          pending.delete(id)
          clearTimeout(timer)
          resolve(unavailable(`cannot publish to ${brokerUrl}: ${error.message}`))
        })
      })
    },
    async close() {
      for (const [id, waiting] of pending) {
        pending.delete(id)
        waiting.resolve(unavailable('the MQTT transport was closed', waiting.ignored))
      }
      await client.endAsync(true)
    },
  }
}

/** The id, status and body of an answer on the verdicts topic; undefined for anything else. */
function answerOf(payload: Buffer | undefined): { id: string; status: number; body: object } | undefined {
  if (!payload || payload.length === 0) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  const { id, status } = parsed as { id?: unknown; status?: unknown }
  if (typeof id !== 'string' || typeof status !== 'number' || !Number.isInteger(status)) return undefined
  return { id, status, body: parsed }
}
