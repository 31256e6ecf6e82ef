import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import { toReadingJson } from '../readings/reading.ts'
import { DEFAULT_TOPIC_PREFIX, readingsTopic, verdictsTopic } from '../readings/readingTopics.ts'
import {
  checkRequestSize,
  type PostReadingsReturnType,
  type ReadingTransport,
  readGatewayAnswer,
} from './postReadings.ts'

export type CreateMqttTransportParameters = {
  /** The broker the gateway listens on, e.g. `mqtt://127.0.0.1:1883`. */
  brokerUrl: string
  /** Topic prefix shared with the gateway (default `depin/v1`). */
  topicPrefix?: string
  /** Milliseconds to wait for the gateway's answer (default 10 000). */
  timeoutMs?: number
  /** Broker credentials, when it asks for them. */
  username?: string
  password?: string
}

export type MqttTransport = ReadingTransport & {
  /** Disconnects; sends still waiting get an `unavailable` answer. */
  close(): Promise<void>
}

/**
 * Sends signed readings to a gateway through an MQTT broker (protocol in
 * `src/readings/readingTopics.ts`): one connection, however many devices share it; each
 * `send` publishes QoS 1 and waits for the gateway's verdicts. Connects in the background and
 * reconnects by itself; while the broker or the gateway is away, sends answer `unavailable`,
 * so a device keeps its readings queued.
 * @example
 * const transport = createMqttTransport({ brokerUrl: 'mqtt://127.0.0.1:1883' })
 * const device = createDevice({ ..., transport })
 */
export function createMqttTransport(parameters: CreateMqttTransportParameters): MqttTransport {
  const { brokerUrl, timeoutMs = 10_000 } = parameters
  const prefix = parameters.topicPrefix ?? DEFAULT_TOPIC_PREFIX
  const replyId = randomBytes(12).toString('hex')
  const pending = new Map<string, { count: number; resolve: (answer: PostReadingsReturnType) => void }>()
  const client = mqtt.connect(brokerUrl, {
    clientId: `depin-device-${replyId}`,
    clean: true,
    reconnectPeriod: 1_000,
    connectTimeout: Math.min(timeoutMs, 10_000),
    ...(parameters.username !== undefined ? { username: parameters.username } : {}),
    ...(parameters.password !== undefined ? { password: parameters.password } : {}),
  })
  let lastError = ''
  client.on('error', (error) => {
    lastError = error.message
  })
  // the answer topic is subscribed before any request goes out (and again after each reconnect)
  let subscribed = false
  client.on('connect', () => {
    client.subscribe(verdictsTopic(prefix, replyId), { qos: 1 }, (error) => {
      if (error) lastError = error.message
      else subscribed = true
    })
  })
  client.on('close', () => {
    subscribed = false
  })
  client.on('message', (_topic, payload) => {
    let answer: { id?: unknown; status?: unknown }
    try {
      answer = JSON.parse(payload.toString('utf8'))
    } catch {
      return // not an answer of a gateway: ignored
    }
    const waiting = typeof answer.id === 'string' ? pending.get(answer.id) : undefined
    if (!waiting || typeof answer.status !== 'number') return // late or foreign: ignored
    pending.delete(answer.id as string)
    waiting.resolve(
      readGatewayAnswer({ status: answer.status, body: answer, count: waiting.count, source: brokerUrl }),
    )
  })

  const unavailable = (message: string): PostReadingsReturnType => ({
    type: 'unavailable',
    status: undefined,
    message,
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
      const id = randomBytes(12).toString('hex')
      const payload = JSON.stringify({ id, readings: readings.map(toReadingJson) })
      return new Promise<PostReadingsReturnType>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          resolve(unavailable(`no answer from a gateway through ${brokerUrl} in ${timeoutMs} ms`))
        }, deadline - Date.now())
        pending.set(id, {
          count: readings.length,
          resolve: (answer) => {
            clearTimeout(timer)
            resolve(answer)
          },
        })
        client.publish(readingsTopic(prefix, replyId), payload, { qos: 1 }, (error) => {
          if (!error) return
          pending.delete(id)
          clearTimeout(timer)
          resolve(unavailable(`cannot publish to ${brokerUrl}: ${error.message}`))
        })
      })
    },
    async close() {
      for (const [id, waiting] of pending) {
        pending.delete(id)
        waiting.resolve(unavailable('the MQTT transport was closed'))
      }
      await client.endAsync(true)
    },
  }
}
