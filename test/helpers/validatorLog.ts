/**
 * What a validator process (`depin validator run`) logged: one JSON line per event on stdout,
 * kept in its `output`. For tests that explain a failure with what the validators saw.
 */
import type { ValidatorProcess } from './processNetwork.ts'

/** The distinct `error` messages a validator process logged so far, oldest first. */
export function loggedErrors(p: ValidatorProcess): string[] {
  const errors = new Set<string>()
  // the last piece is '' or a line still being written; stderr lines are not JSON
  for (const line of p.output.join('').split('\n').slice(0, -1)) {
    if (!line.startsWith('{') || !line.includes('"event":"error"')) continue
    try {
      const event = JSON.parse(line) as { code?: string; message?: string }
      errors.add(`${event.code}: ${event.message}`)
    } catch {
      // a stderr chunk cut into a stdout line: not an event
    }
  }
  return [...errors]
}

/** `error` with every validator's distinct logged errors appended: why the network did not do it. */
export function withValidatorErrors(error: unknown, processes: readonly ValidatorProcess[]): Error {
  const seen = processes
    .map((p, i) => ({ i, errors: loggedErrors(p) }))
    .filter(({ errors }) => errors.length > 0)
    .map(({ i, errors }) => `validator ${i}: ${errors.slice(-3).join(' | ')}`)
  if (seen.length === 0) return error instanceof Error ? error : new Error(String(error))
  const message = error instanceof Error ? error.message : String(error)
  return new Error(`${message}\nthe validators logged:\n${seen.join('\n')}`, { cause: error })
}
