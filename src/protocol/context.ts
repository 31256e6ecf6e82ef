/**
 * The one context every depin process hands to its services: a pino logger writing structured
 * JSON lines (`{ level, time, role, event, …fields }`, bigints as decimal strings, never a key),
 * its Prometheus metrics (src/protocol/metrics.ts), a shutdown signal aborted when the process is asked to stop, and `report`/`fail` for whatever
 * goes wrong where nobody awaits it (a timer, an event handler): `report` logs it with a stable
 * code and the process carries on; `fail` logs it and stops the process loudly (exit 1).
 */
import pino, { type DestinationStream, type Logger } from 'pino'
import { DepinError } from '../errors.ts'
import { createMetrics, type Metrics } from './metrics.ts'

export type Context = {
  readonly logger: Logger
  /** The process's Prometheus metrics, served at GET /metrics by its servers. */
  readonly metrics: Metrics
  /** Aborted when the process is asked to stop (SIGINT/SIGTERM) or fails. */
  readonly shutdown: AbortSignal
  /** Logs an event line: `{ event, ...fields }` at info level. */
  log(event: string, fields?: Record<string, unknown>): void
  /** Logs an error with its code (`error.code` for a DepinError, else `fallbackCode`); carries on. */
  report(fallbackCode: string, error: unknown, fields?: Record<string, unknown>): void
  /** Logs an error that leaves the process unable to work, and stops it with exit code 1. */
  fail(fallbackCode: string, error: unknown, fields?: Record<string, unknown>): never
  /** Runs `task` now, catching what it throws or rejects with: a timer's body that must never escape. */
  guard(code: string, task: () => unknown): void
}

export type CreateContextOptions = {
  /** The process's role, on every line: `validator`, `gateway`, `network`, `api`, … */
  role: string
  /** Where lines go (default stdout, synchronously: a line is out before the process may die). */
  destination?: DestinationStream
  level?: pino.Level
  /** What `fail` calls after logging (default process.exit). */
  exit?: (code: number) => never
}

/** Fields as JSON can carry them: bigints as decimal strings, errors as { code, message }. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Error) return errorFields(value)
  if (Array.isArray(value)) return value.map(plain)
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

function errorFields(error: unknown, fallbackCode = 'ERROR'): { code: string; message: string } {
  if (error instanceof DepinError) return { code: error.code, message: error.message }
  const code =
    error && typeof error === 'object' && 'code' in error && typeof error.code === 'string'
      ? error.code
      : fallbackCode
  return { code, message: error instanceof Error ? error.message : String(error) }
}

/** A context for one process (or one service in tests, with a destination of its own). */
export function createContext(options: CreateContextOptions): Context & { stop(): void } {
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { role: options.role },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => plain(fields) as Record<string, unknown>,
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  )
  const controller = new AbortController()
  const exit = options.exit ?? ((code: number) => process.exit(code))
  const context: Context & { stop(): void } = {
    logger,
    metrics: createMetrics(options.role),
    shutdown: controller.signal,
    log(event, fields = {}) {
      logger.info({ event, ...fields })
    },
    report(fallbackCode, error, fields = {}) {
      logger.error({ event: 'error', ...errorFields(error, fallbackCode), ...fields })
    },
    fail(fallbackCode, error, fields = {}) {
      logger.fatal({ event: 'fatal', ...errorFields(error, fallbackCode), ...fields })
      controller.abort()
      return exit(1)
    },
    guard(code, task) {
      try {
        const result = task()
        if (result instanceof Promise) result.catch((error: unknown) => context.report(code, error))
      } catch (error) {
        context.report(code, error)
      }
    },
    stop() {
      controller.abort()
    },
  }
  return context
}

/**
 * Makes the process loud about what would otherwise kill it silently or leave it half-alive: an
 * unhandled rejection or an uncaught exception is logged with its code and stops the process
 * (exit 1); SIGINT and SIGTERM abort the context's shutdown signal. Returns the uninstaller.
 */
export function installProcessHandlers(context: Context & { stop(): void }): () => void {
  const onRejection = (reason: unknown) =>
    context.fail('UNHANDLED_REJECTION', reason, { origin: 'unhandledRejection' })
  const onException = (error: unknown) =>
    context.fail('UNCAUGHT_EXCEPTION', error, { origin: 'uncaughtException' })
  const onSignal = (signal: NodeJS.Signals) => {
    context.log('stop_requested', { signal })
    context.stop()
  }
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return () => {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** Resolves when the signal is aborted. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    signal.addEventListener('abort', () => resolve(), { once: true })
  })
}
