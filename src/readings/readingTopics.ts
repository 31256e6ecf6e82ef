/**
 * Readings over MQTT: request and answer, on topics any MQTT 3.1.1 or 5 broker carries
 * (Mosquitto, EMQX, the embedded aedes).
 *
 * - A sender (a device, or a hub relaying for many) picks a reply id and subscribes to
 *   `<prefix>/verdicts/<replyId>`, then publishes, QoS 1, to `<prefix>/readings/<replyId>` the
 *   same JSON as the body of `POST /v1/readings` plus a request id: `{ "id", "readings": [...] }`.
 * - The gateway answers on `<prefix>/verdicts/<replyId>` with `{ "id", "status", ... }`: status
 *   200 with a verdict per reading, or a 4xx with `{ error: { code, message, details } }`, as
 *   over HTTP. It answers, and acknowledges the MQTT message, only once the accepted readings
 *   are durable; a message the broker redelivers after a gateway crash is answered again
 *   (a reading already stored is a duplicate: acknowledged, stored once).
 *
 * Readings carry their own signatures, and so do the answers (the gateway's `GatewayVerdict`,
 * see `gatewayVerdict.ts`): anyone may publish on a verdicts topic, but a device believes only
 * an answer a listed gateway signed for its request, so the broker is trusted with delivery only.
 */
export const DEFAULT_TOPIC_PREFIX = 'depin/v1'

/** A reply id: 1 to 64 characters that are safe in one topic level. */
export const REPLY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export const readingsTopic = (prefix: string, replyId: string) => `${prefix}/readings/${replyId}`
export const verdictsTopic = (prefix: string, replyId: string) => `${prefix}/verdicts/${replyId}`
/** What a gateway subscribes to: every sender's requests. */
export const allReadingsTopics = (prefix: string) => `${prefix}/readings/+`

/** The reply id in a readings topic, or undefined when the topic is not one. */
export function replyIdOf(prefix: string, topic: string): string | undefined {
  const head = `${prefix}/readings/`
  if (!topic.startsWith(head)) return undefined
  const replyId = topic.slice(head.length)
  return REPLY_ID_PATTERN.test(replyId) ? replyId : undefined
}
