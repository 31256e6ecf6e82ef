/**
 * The fuzzer's figures: inputs per target, answers by class, what must be zero, and the first
 * few inputs behind each non-zero figure (to be turned into tests).
 */

export const TARGETS = [
  'gateway-http',
  'gateway-mqtt',
  'gateway-records',
  'api',
  'exchange',
  'decoder',
] as const
export type Target = (typeof TARGETS)[number]

/** Figures that must be 0 after a run; any other value fails it. */
export const MUST_BE_ZERO = {
  crashes: 'crashes (uncaught exceptions, unhandled rejections, a server or broker gone)',
  serverErrors: '5xx answers (or failures a server reported and carried on after)',
  acceptedForged:
    'accepted forged items (answered accepted, stored or served without a valid signature of a key it should accept, or against its rules)',
  untypedRefusals: 'refusals without a typed { error: { code } } body (or not a 4xx)',
  transportErrors: 'requests without an answer (connection reset, timeout, an MQTT request never answered)',
  validRefused: 'valid items refused as invalid (schema, signature, signer)',
  decoderWrongError: 'decoder exceptions that are not DepinError BATCH_INVALID',
  decoderNonCanonical: 'decoder acceptances of bytes that are not the canonical encoding',
} as const
export type Figure = keyof typeof MUST_BE_ZERO

/** An input behind a non-zero figure, as sent, and what came back. */
export type Offender = { figure: Figure; target: Target; kind: string; input: string; answer: string }

const OFFENDERS_KEPT = 5
const clip = (text: string, max = 700) =>
  text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text

export type Tally = ReturnType<typeof createTally>

export function createTally() {
  const inputs = Object.fromEntries(TARGETS.map((t) => [t, 0])) as Record<Target, number>
  const figures = Object.fromEntries(Object.keys(MUST_BE_ZERO).map((f) => [f, 0])) as Record<Figure, number>
  /** Answers per target by class ("200", "4xx", "429", …) and other counts worth printing. */
  const notes = Object.fromEntries(TARGETS.map((t) => [t, new Map<string, number>()])) as Record<
    Target,
    Map<string, number>
  >
  const offenders: Offender[] = []
  const offendersBy = new Map<Figure, number>()
  return {
    inputs,
    figures,
    notes,
    offenders,
    input(target: Target) {
      inputs[target]++
    },
    note(target: Target, key: string, n = 1) {
      const map = notes[target]
      map.set(key, (map.get(key) ?? 0) + n)
    },
    flag(figure: Figure, target: Target, kind: string, input: unknown, answer: unknown) {
      figures[figure]++
      const kept = offendersBy.get(figure) ?? 0
      if (kept >= OFFENDERS_KEPT) return
      offendersBy.set(figure, kept + 1)
      offenders.push({
        figure,
        target,
        kind,
        input: clip(typeof input === 'string' ? input : safeJson(input)),
        answer: clip(typeof answer === 'string' ? answer : safeJson(answer), 400),
      })
    },
    total: () => TARGETS.reduce((sum, t) => sum + inputs[t], 0),
    mustBeZeroTotal: () => Object.values(figures).reduce((sum, n) => sum + n, 0),
  }
}

/** JSON of anything (bigints as strings, errors with their code), never throwing. */
export function safeJson(value: unknown): string {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code
    return `${value.name}${code ? ` ${String(code)}` : ''}: ${value.message}\n${value.stack?.split('\n').slice(1, 6).join('\n') ?? ''}`
  }
  if (value instanceof Uint8Array) return `bytes ${Buffer.from(value).toString('base64')}`
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value)
  } catch {
    return String(value)
  }
}
