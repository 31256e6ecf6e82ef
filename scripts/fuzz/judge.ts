/** What every answer of a depin server must look like, whatever it was sent. */
import type { Tally, Target } from './tally.ts'

/** A stable error code: upper-case words joined by underscores. */
export const ERROR_CODE = /^[A-Z][A-Z0-9_]{1,63}$/

/**
 * The JSON of a body, or undefined when it is not JSON. A leading byte-order mark is skipped, as
 * fastify's parser (secure-json-parse) skips it: what the servers read is what is judged.
 */
export function parseAnswer(text: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown
  } catch {
    return undefined
  }
}

/** The `error.code` of a refusal's body, when it is a typed one. */
export function errorCodeOf(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | null | undefined)?.error?.code
  return typeof code === 'string' && ERROR_CODE.test(code) ? code : undefined
}

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Judges the status and body of an answer that is not a 200: a 5xx is a server error, anything
 * else must be a 4xx with a typed `{ error: { code } }` body; 429s are counted apart. Returns the
 * refusal's code (or a label) for the tally.
 */
export function judgeRefusal(
  tally: Tally,
  target: Target,
  kind: string,
  input: unknown,
  status: number,
  body: unknown,
  text: string,
): string {
  if (status >= 500) {
    tally.flag('serverErrors', target, kind, input, `${status} ${text}`)
    return `${status}`
  }
  const code = errorCodeOf(body)
  if (status < 400 || status >= 500 || code === undefined) {
    tally.flag('untypedRefusals', target, kind, input, `${status} ${text}`)
    return `${status} untyped`
  }
  return status === 429 ? '429 RATE_LIMITED' : `${status} ${code}`
}
