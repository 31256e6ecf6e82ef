import pg from 'pg'

/** The PostgreSQL the benchmarks write to (POSTGRES_URL, default the machine's server, database `test`). */
export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** `url` with the store's schema (see parseDatabaseTarget). */
export const withSchema = (url: string, schema: string) =>
  `${url}${url.includes('?') ? '&' : '?'}schema=${schema}`

/** Drops a benchmark's schema and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } finally {
    await client.end()
  }
}
