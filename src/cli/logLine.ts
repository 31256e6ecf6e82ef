import { type Context, createContext } from '../protocol/context.ts'

let cli: Context | undefined

/**
 * Prints one JSON log line of a depin process through its pino logger: `{ level, time, role,
 * event, ...fields }`, bigints as decimal strings. Never pass a key or a secret. Role processes
 * log through their own context (`openRoleContext`); this is for the rest of the CLI.
 */
export const logLine = (event: string, fields: Record<string, unknown>) => {
  cli ??= createContext({ role: 'cli' })
  cli.log(event, fields)
}
