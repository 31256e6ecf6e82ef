import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

/** The machine's PostgreSQL, for tests of both dialects (POSTGRES_URL, default the local server's `test`). */
export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * The schemas tests make are named `t_<run>_<name>_<random>`: `<run>` is the start of the test
 * run in base 36 (set by test/globalSetup.ts, which drops the run's schemas when it ends, and
 * those of runs older than a day, left by a run that was killed).
 */
export const TEST_SCHEMA_PREFIX = 't_'
const runId = () => process.env.DEPIN_TEST_RUN ?? Date.now().toString(36)

const schemaName = (name: string) =>
  `${TEST_SCHEMA_PREFIX}${runId()}_${name
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(5).toString('hex')}`
const withSchema = (url: string, schema: string) => `${url}${url.includes('?') ? '&' : '?'}schema=${schema}`

/**
 * Where a test's store lives: a SQLite file in `dir`, or — when the suite runs on PostgreSQL
 * (`TEST_DATABASE_URL`, e.g. postgres://postgres@127.0.0.1:5432/test) — a fresh schema of that
 * database. Call it once per store a test keeps across restarts.
 */
export function testDatabase(dir: string, name: string): string {
  const url = process.env.TEST_DATABASE_URL
  return url ? withSchema(url, schemaName(name)) : join(dir, `${name}.db`)
}

/** A fresh schema of the machine's PostgreSQL, whatever dialect the rest of the suite runs on. */
export function postgresTestDatabase(name: string): string {
  return withSchema(process.env.TEST_DATABASE_URL ?? POSTGRES_URL, schemaName(name))
}

/** Whether this run keeps its stores in PostgreSQL. */
export const onPostgres = () => Boolean(process.env.TEST_DATABASE_URL)
