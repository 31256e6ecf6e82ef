import pg from 'pg'
import { POSTGRES_URL, TEST_SCHEMA_PREFIX } from './helpers/testDatabase.ts'

const DAY_MS = 24 * 3600 * 1000

/** Drops the test schemas `which` picks (by the run id in their names). */
async function dropTestSchemas(which: (run: string) => boolean) {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL ?? POSTGRES_URL })
  try {
    await client.connect()
  } catch (error) {
    // only the suite's PostgreSQL tests need it, and they fail on their own, saying why
    console.warn(
      `globalSetup: PostgreSQL not reachable, no test schemas dropped: ${(error as Error).message}`,
    )
    return
  }
  try {
    const { rows } = await client.query<{ name: string }>(
      'SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)',
      [TEST_SCHEMA_PREFIX],
    )
    for (const { name } of rows) {
      const run = name.slice(TEST_SCHEMA_PREFIX.length).split('_')[0] ?? ''
      if (which(run)) await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
    }
  } finally {
    await client.end()
  }
}

/** One id per run, in every test worker's environment, so its schemas can be told apart. */
export async function setup() {
  const run = Date.now().toString(36)
  process.env.DEPIN_TEST_RUN = run
  // runs killed before their teardown leave schemas behind: those older than a day go
  await dropTestSchemas((other) => Date.now() - Number.parseInt(other, 36) > DAY_MS)
  return async () => dropTestSchemas((other) => other === run)
}
