import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt'
import { bytesToHex } from 'viem'
import { type Keccak256, loadKeccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import {
  allReadingsTopics,
  DEFAULT_TOPIC_PREFIX,
  replyIdOf,
  verdictsTopic,
} from '../readings/readingTopics.ts'
import { type Gateway, type IngestAnswer, logGatewayError, refusal } from './createGateway.ts'

export type CreateMqttIngestOptions = {
  /** The gateway whose checks and store the readings go through. */
  gateway: Pick<Gateway, 'ingest'> & Partial<Pick<Gateway, 'countRefused'>>
  /** e.g. `mqtt://127.0.0.1:1883` */
  brokerUrl: string
  /**
   * The gateway's MQTT client id. The session is kept (clean: false), so a broker that keeps
   * sessions holds the requests published while the gateway is down and delivers them on its return.
   */
  clientId: string
  /** Topic prefix shared with the devices (default `depin/v1`). */
  topicPrefix?: string
  /** Largest payload in bytes (default 1 MiB, as over HTTP). */
  bodyLimit?: number
  username?: string
  password?: string
  /** Told when the connection to the broker drops and when it is back (after start). */
  onConnection?: (event: { type: 'lost' } | { type: 'restored' }) => void
  /**
   * Told of every failure the ingest carries on after (default: a JSON line on stderr):
   * `INGEST_FAILED` (the gateway could not check or store a request: answered 503, so the sender
   * keeps its readings and sends them again), `MQTT_PUBLISH_FAILED` (an answer did not reach the
   * broker), `MQTT_CONNECTION_ERROR` (the broker refused or dropped the connection; reported once
   * until the next successful connect, reconnecting every second meanwhile).
   */
  onError?: (event: MqttIngestErrorEvent) => void
}

/** A failure the MQTT ingest reported and carried on after. */
export type MqttIngestErrorEvent = {
  code: 'INGEST_FAILED' | 'MQTT_PUBLISH_FAILED' | 'MQTT_CONNECTION_ERROR'
  message: string
  error: unknown
}

export type MqttIngest = {
  /** Connects and subscribes; rejects with MQTT_BROKER_UNREACHABLE if the broker does not answer. */
  start(): Promise<void>
  stop(): Promise<void>
  /** Requests answered, by outcome; `unanswerable` had no valid reply id to answer on. */
  stats(): { answered: number; refused: number; unanswerable: number }
}

/** The broker could not be reached or refused the gateway. */
export class MqttBrokerUnreachableError extends DepinError {
  constructor(brokerUrl: string, cause: unknown) {
    super(
      'MQTT_BROKER_UNREACHABLE',
      `cannot reach the MQTT broker ${brokerUrl}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { details: { brokerUrl }, cause, retryable: true },
    )
  }
}

/**
 * The gateway's MQTT transport: takes batches of readings published to
 * `<prefix>/readings/<replyId>` (QoS 1), puts each through the same checks and store as
 * `POST /v1/readings`, and answers on `<prefix>/verdicts/<replyId>`. A message is
 * acknowledged to the broker (PUBACK) only after its readings are durable, one at a time, so a
 * gateway that dies mid-batch gets it again. A payload that is not JSON, too large, or not a
 * batch is answered with a 4xx error and changes nothing. Answers are signed by the gateway
 * (when it has an operator key) over the keccak-256 of the payload as received. A request the
 * gateway fails to store is reported (`onError`, `INGEST_FAILED`) and answered 503: the sender
 * keeps its readings; no failure of a message stops the ones after it.
 */
export function createMqttIngest(options: CreateMqttIngestOptions): MqttIngest {
  const { gateway, brokerUrl, clientId } = options
  const prefix = options.topicPrefix ?? DEFAULT_TOPIC_PREFIX
  const bodyLimit = options.bodyLimit ?? 1024 * 1024
  const stats = { answered: 0, refused: 0, unanswerable: 0 }
  const onError = options.onError ?? logGatewayError
  let client: MqttClient | undefined
  let keccak: Keccak256 | undefined

  /** The answer to a message; `early` when it was refused before the gateway's ingest saw it. */
  async function answerOf(payload: Buffer): Promise<{ id: unknown; early?: true } & IngestAnswer> {
    if (payload.length > bodyLimit) {
      return {
        id: null,
        early: true,
        ...refusal(
          413,
          'BODY_TOO_LARGE',
          `a message holds at most ${bodyLimit} bytes, this one ${payload.length}`,
          {
            bodyLimit,
            received: payload.length,
          },
        ),
      }
    }
    let request: unknown
    try {
      request = JSON.parse(payload.toString('utf8'))
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause)
      return { id: null, early: true, ...refusal(400, 'INVALID_JSON', `the message is not JSON: ${message}`) }
    }
    const id = (request as { id?: unknown } | null)?.id
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) {
      return {
        id: null,
        early: true,
        ...refusal(
          400,
          'INVALID_BODY',
          'the message must be { "id": "<1 to 128 characters>", "readings": [ … ] }',
        ),
      }
    }
    const requestHash = keccak ? bytesToHex(keccak(payload)) : undefined
    try {
      return { id, ...(await gateway.ingest(request, { request: requestHash, transport: 'mqtt' })) }
    } catch (error) {
      // the store (or the signature check) failed: said so, answered 503, the next message goes on
      const message = error instanceof Error ? error.message : String(error)
      onError({ code: 'INGEST_FAILED', message: `could not check and store a request: ${message}`, error })
      return {
        id,
        ...refusal(503, 'INGEST_FAILED', 'the gateway could not store the readings; send them again later'),
      }
    }
  }

  async function handle(via: MqttClient, packet: IPublishPacket): Promise<void> {
    const replyId = replyIdOf(prefix, packet.topic)
    if (replyId === undefined) {
      stats.unanswerable++ // nowhere to answer: dropped, changes nothing
      return
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const { id, status, body, early } = await answerOf(payload)
    if (status === 200) stats.answered++
    else stats.refused++
    if (early && 'error' in body) gateway.countRefused?.('mqtt', body.error.code)
    // not awaited: its PUBACK is read only after this message is done, which would wait on it
    via.publish(
      verdictsTopic(prefix, replyId),
      JSON.stringify({ id, status, ...body }),
      { qos: 1 },
      (error) => {
        if (!error) return
        onError({
          code: 'MQTT_PUBLISH_FAILED',
          message: `could not publish the answer to ${replyId}: ${error.message}`,
          error,
        })
      },
    )
  }

  return {
    async start() {
      keccak = await loadKeccak256()
      const connecting = mqtt.connect(brokerUrl, {
        clientId,
        clean: false,
        reconnectPeriod: 1_000,
        connectTimeout: 10_000,
        manualConnect: true,
        ...(options.username !== undefined ? { username: options.username } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
      })
      // one message at a time, acknowledged once handled (mqtt.js sends the PUBACK after `done`);
      // set before connecting, as a kept session's messages arrive right after the CONNACK.
      // `handle` answers every failure itself, so each message is acknowledged and the next taken
      // (mqtt.js would drop an error given to `done` without a word, and without redelivery)
      connecting.handleMessage = (packet, done) => {
        if (packet.cmd !== 'publish') return done()
        handle(connecting, packet).then(
          () => done(),
          (error: unknown) => {
            const message = error instanceof Error ? error.message : String(error)
            onError({ code: 'INGEST_FAILED', message: `could not handle a message: ${message}`, error })
            done()
          },
        )
      }
      try {
        await new Promise<void>((resolve, reject) => {
          let lastError: Error | undefined
          const onError = (error: Error) => {
            lastError = error
          }
          const settle = (error?: Error) => {
            connecting.off('connect', onConnect).off('error', onError).off('close', onClose)
            if (error) reject(error)
            else resolve()
          }
          const onConnect = () => settle()
          const onClose = () =>
            settle(lastError ?? new Error('the connection closed before the broker accepted it'))
          connecting.on('connect', onConnect).on('error', onError).on('close', onClose)
          connecting.connect()
        })
        await connecting.subscribeAsync(allReadingsTopics(prefix), { qos: 1 })
      } catch (cause) {
        await connecting.endAsync(true)
        throw new MqttBrokerUnreachableError(brokerUrl, cause)
      }
      // reconnects by itself, every second; an error is reported once until the next connect
      let errorReported = false
      connecting.on('error', (error) => {
        if (errorReported) return
        errorReported = true
        onError({
          code: 'MQTT_CONNECTION_ERROR',
          message: `MQTT broker ${brokerUrl}: ${error.message}`,
          error,
        })
      })
      let connected = true
      connecting.on('offline', () => {
        if (connected) options.onConnection?.({ type: 'lost' })
        connected = false
      })
      connecting.on('connect', () => {
        errorReported = false
        if (!connected) options.onConnection?.({ type: 'restored' })
        connected = true
      })
      client = connecting
    },
    async stop() {
      await client?.endAsync()
      client = undefined
    },
    stats: () => ({ ...stats }),
  }
}
