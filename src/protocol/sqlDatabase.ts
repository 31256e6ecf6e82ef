import Database from 'better-sqlite3'
import pg from 'pg'
import { DepinError } from '../errors.ts'

/**
 * Where a role keeps its store: a SQLite file (the embedded default) or PostgreSQL.
 *
 * A target is a file path, or a `postgres://` (or `postgresql://`) URL. A URL may name the
 * schema the store's tables live in with `?schema=<name>` (default `public`): roles sharing one
 * PostgreSQL database each take a schema of their own (`gateway_0`, `validator_2`, …).
 */
export type DatabaseTarget =
  | { dialect: 'sqlite'; path: string }
  | { dialect: 'postgres'; url: string; schema: string }

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** Reads a target: a `postgres://` URL (its `schema` parameter taken out) or a SQLite path. */
export function parseDatabaseTarget(target: string): DatabaseTarget {
  if (!/^postgres(ql)?:\/\//.test(target)) return { dialect: 'sqlite', path: target }
  let url: URL
  try {
    url = new URL(target)
  } catch {
    throw new DepinError('DATABASE_URL_INVALID', 'the database URL is not a URL', {
      details: { target: redactUrl(target) },
    })
  }
  const schema = url.searchParams.get('schema') ?? 'public'
  if (!SCHEMA_NAME.test(schema)) {
    throw new DepinError(
      'DATABASE_URL_INVALID',
      `schema ${JSON.stringify(schema)} is not a plain lower-case SQL name ([a-z_][a-z0-9_]*)`,
      { details: { target: redactUrl(target) } },
    )
  }
  url.searchParams.delete('schema')
  return { dialect: 'postgres', url: url.toString(), schema }
}

/**
 * A role's store: `configured` (its config's `databaseUrl`, else the environment's
 * `DATABASE_URL`) when set, else the SQLite file `sqlitePath`. A PostgreSQL URL that names no
 * schema gets `schema` (the role's own, so roles can share one database).
 */
export function roleDatabase(configured: string | undefined, sqlitePath: string, schema: string): string {
  const target = configured ?? process.env.DATABASE_URL
  if (!target) return sqlitePath
  if (parseDatabaseTarget(target).dialect === 'sqlite' || /[?&]schema=/.test(target)) return target
  return `${target}${target.includes('?') ? '&' : '?'}schema=${schema}`
}

/** A URL with its password replaced by `***`, fit for logs and errors. */
export function redactUrl(target: string): string {
  return target.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@')
}

/** Opens a SQLite file for a store: WAL, synchronous FULL (a commit is durable across power loss). */
export function openSqlite(path: string, options: { readonly?: boolean } = {}): Database.Database {
  const db = options.readonly
    ? new Database(path, { readonly: true, fileMustExist: true })
    : new Database(path)
  if (!options.readonly) {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
  }
  return db
}

/**
 * A pool of PostgreSQL connections whose `search_path` is the target's schema (`migratePostgres`
 * creates it). Each connection commits synchronously (PostgreSQL's default): a commit is durable.
 */
export async function openPostgres(
  target: Extract<DatabaseTarget, { dialect: 'postgres' }>,
  options: { max?: number } = {},
): Promise<pg.Pool> {
  const pool = new pg.Pool({
    connectionString: target.url,
    max: options.max ?? 4,
    options: `-c search_path=${target.schema}`,
  })
  // an idle connection's error (the server restarted) would otherwise be thrown out of the process
  pool.on('error', () => {})
  try {
    await pool.query('SELECT 1')
  } catch (error) {
    await pool.end()
    throw new DepinError(
      'DATABASE_UNREACHABLE',
      `could not open PostgreSQL at ${redactUrl(target.url)}: ${(error as Error).message}`,
      { cause: error, details: { schema: target.schema }, retryable: true },
    )
  }
  return pool
}

/**
 * One step of a store's schema, in both dialects. Steps run in order of `version`, each once,
 * in a transaction with its record in `schema_migrations`; a store opened by an older depin is
 * brought forward, one opened by a newer one is refused (`STORE_SCHEMA_NEWER`).
 */
export type Migration = {
  version: number
  name: string
  /** SQL, or a function for a step that must look before it acts (a column older files may have). */
  sqlite: string | ((db: Database.Database) => void)
  postgres: string
}

const MIGRATIONS_TABLE =
  'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)'

function checkNotNewer(where: string, applied: number, migrations: readonly Migration[]) {
  const known = migrations.at(-1)?.version ?? 0
  if (applied > known) {
    throw new DepinError(
      'STORE_SCHEMA_NEWER',
      `${where} holds schema version ${applied}, newer than this depin knows (${known}); run the depin that wrote it`,
      { details: { applied, known } },
    )
  }
}

/** Brings a SQLite store's schema to the last migration. */
export function migrateSqlite(db: Database.Database, migrations: readonly Migration[], where: string): void {
  db.exec(MIGRATIONS_TABLE)
  const row = db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as {
    version: number | null
  }
  const applied = row.version ?? 0
  checkNotNewer(where, applied, migrations)
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
  for (const migration of migrations) {
    if (migration.version <= applied) continue
    db.transaction(() => {
      if (typeof migration.sqlite === 'string') db.exec(migration.sqlite)
      else migration.sqlite(db)
      record.run(migration.version, migration.name, Date.now())
    })()
  }
}

/**
 * Creates a PostgreSQL store's schema when missing and brings it to the last migration. An
 * advisory lock per schema makes processes starting together (two API replicas) do it one after
 * the other.
 */
export async function migratePostgres(
  pool: pg.Pool,
  schema: string,
  migrations: readonly Migration[],
  where: string,
): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`depin schema ${schema}`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(MIGRATIONS_TABLE)
    const { rows } = await client.query<{ version: number | null }>(
      'SELECT MAX(version) AS version FROM schema_migrations',
    )
    const applied = rows[0]?.version ?? 0
    checkNotNewer(where, applied, migrations)
    for (const migration of migrations) {
      if (migration.version <= applied) continue
      await client.query(migration.postgres)
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        Date.now(),
      ])
    }
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}
