import type Database from 'better-sqlite3'
import type pg from 'pg'
import type { Address, Hex } from 'viem'
import {
  type Migration,
  migratePostgres,
  migrateSqlite,
  openPostgres,
  openSqlite,
  parseDatabaseTarget,
} from '../protocol/sqlDatabase.ts'
import type { SignedReading } from '../readings/reading.ts'

/** seq as 20 zero-padded digits: TEXT order equals numeric order for every uint64. */
const padSeq = (seq: bigint) => seq.toString().padStart(20, '0')

export type StoredBatch = { epoch: bigint; hash: Hex; count: number; sealedAt: bigint }
export type StoredBatchWithBytes = StoredBatch & { bytes: Uint8Array }
export type AcceptedRow = { epoch: bigint; reading: SignedReading }

/**
 * The gateway's store: readings appended in arrival order and acknowledged only once the
 * transaction holding them has committed (durable across a crash or power loss), and the
 * sealed batches. The same interface over SQLite (WAL, synchronous FULL) and PostgreSQL.
 */
export type GatewayStore = {
  /** Stores accepted readings in one transaction; resolves once it is durable. */
  append(rows: readonly AcceptedRow[], receivedAt?: number): Promise<void>
  /** The last accepted (seq, signature) per device (lower-case), to rebuild the in-memory replay check. */
  lastAccepted(): Promise<Map<string, { seq: bigint; signature: Hex }>>
  /** An epoch's readings in canonical order (device, seq; bytewise). */
  epochReadings(epoch: bigint): Promise<SignedReading[]>
  saveBatch(
    batch: { epoch: bigint; hash: Hex; count: number; bytes: Uint8Array },
    sealedAt: bigint,
  ): Promise<void>
  batch(epoch: bigint): Promise<StoredBatchWithBytes | undefined>
  batchByHash(hash: Hex): Promise<StoredBatchWithBytes | undefined>
  /** The latest sealed batches, newest first. */
  batches(limit?: number): Promise<StoredBatch[]>
  lastSealedEpoch(): Promise<bigint | undefined>
  getMeta(key: string): Promise<string | undefined>
  setMeta(key: string, value: string): Promise<void>
  readingCount(): Promise<number>
  close(): Promise<void>
}

// Version 1 is the schema of files written before migrations were versioned (CREATE … IF NOT
// EXISTS leaves them as they are); version 2 adds a record's kind, which some of them have.
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'readings and batches',
    sqlite: `
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS readings (
        id INTEGER PRIMARY KEY,
        epoch INTEGER NOT NULL,
        device TEXT NOT NULL,
        seq TEXT NOT NULL,
        time INTEGER NOT NULL,
        reading_values TEXT NOT NULL,
        signature TEXT NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS readings_epoch ON readings (epoch);
      CREATE TABLE IF NOT EXISTS batches (
        epoch INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        count INTEGER NOT NULL,
        sealed_at INTEGER NOT NULL,
        bytes BLOB NOT NULL
      );`,
    // COLLATE "C": the canonical order of an epoch's readings is bytewise, whatever the locale
    postgres: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE readings (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        epoch BIGINT NOT NULL,
        device TEXT COLLATE "C" NOT NULL,
        seq TEXT COLLATE "C" NOT NULL,
        time BIGINT NOT NULL,
        reading_values TEXT NOT NULL,
        signature TEXT NOT NULL,
        received_at BIGINT NOT NULL
      );
      CREATE INDEX readings_epoch ON readings (epoch);
      CREATE TABLE batches (
        epoch BIGINT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        count INTEGER NOT NULL,
        sealed_at BIGINT NOT NULL,
        bytes BYTEA NOT NULL
      );`,
  },
  {
    version: 2,
    name: 'record kind',
    sqlite: (db) => {
      const columns = db.prepare('PRAGMA table_info(readings)').all() as { name: string }[]
      if (!columns.some((c) => c.name === 'kind'))
        db.exec('ALTER TABLE readings ADD COLUMN kind INTEGER NOT NULL DEFAULT 0')
    },
    postgres: 'ALTER TABLE readings ADD COLUMN kind INTEGER NOT NULL DEFAULT 0',
  },
]

type ReadingRow = {
  device: Address
  seq: string
  time: number | string
  reading_values: string
  signature: Hex
  kind: number
}
const toReading = (r: ReadingRow): SignedReading => ({
  device: r.device,
  seq: BigInt(r.seq),
  time: BigInt(r.time),
  values: (JSON.parse(r.reading_values) as string[]).map(BigInt),
  signature: r.signature,
  ...(r.kind ? { kind: r.kind } : {}),
})
type BatchRow = {
  epoch: number | bigint | string
  hash: string
  count: number
  sealed_at: number | bigint | string
  bytes?: Uint8Array
}
const toBatch = (row: BatchRow): StoredBatch => ({
  epoch: BigInt(row.epoch),
  hash: row.hash as Hex,
  count: row.count,
  sealedAt: BigInt(row.sealed_at),
})
const toBatchWithBytes = (row: BatchRow | undefined): StoredBatchWithBytes | undefined =>
  row && { ...toBatch(row), bytes: new Uint8Array(row.bytes as Uint8Array) }
/** A reading as the columns store it (device and signature lower-case, seq padded, values JSON). */
const columnsOf = ({ epoch, reading }: AcceptedRow) =>
  [
    epoch,
    reading.device.toLowerCase(),
    padSeq(reading.seq),
    reading.time,
    JSON.stringify(reading.values.map(String)),
    reading.signature.toLowerCase(),
    reading.kind ?? 0,
  ] as const

/**
 * Opens the gateway's store: a SQLite file, or PostgreSQL given a `postgres://` URL (see
 * `parseDatabaseTarget`); its schema is brought to the current version.
 */
export async function openGatewayStore(target: string): Promise<GatewayStore> {
  const where = parseDatabaseTarget(target)
  if (where.dialect === 'sqlite') return openSqliteGatewayStore(where.path)
  const pool = await openPostgres(where)
  try {
    await migratePostgres(pool, where.schema, MIGRATIONS, `the gateway store (schema ${where.schema})`)
  } catch (error) {
    await pool.end()
    throw error
  }
  return postgresGatewayStore(pool)
}

function openSqliteGatewayStore(path: string): GatewayStore {
  const db = openSqlite(path)
  migrateSqlite(db, MIGRATIONS, path)
  return sqliteGatewayStore(db)
}

function sqliteGatewayStore(db: Database.Database): GatewayStore {
  const insert = db.prepare(
    'INSERT INTO readings (epoch, device, seq, time, reading_values, signature, kind, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  )
  const insertMany = db.transaction((rows: readonly AcceptedRow[], receivedAt: number) => {
    for (const row of rows) insert.run(...columnsOf(row), receivedAt)
  })
  const epochReadings = db.prepare(
    'SELECT device, seq, time, reading_values, signature, kind FROM readings WHERE epoch = ? ORDER BY device, seq',
  )
  const insertBatch = db.prepare(
    'INSERT INTO batches (epoch, hash, count, sealed_at, bytes) VALUES (?, ?, ?, ?, ?)',
  )
  const batchByEpoch = db.prepare('SELECT epoch, hash, count, sealed_at, bytes FROM batches WHERE epoch = ?')
  const batchByHash = db.prepare('SELECT epoch, hash, count, sealed_at, bytes FROM batches WHERE hash = ?')
  const latestBatches = db.prepare(
    'SELECT epoch, hash, count, sealed_at FROM batches ORDER BY epoch DESC LIMIT ?',
  )
  const getMeta = db.prepare('SELECT value FROM meta WHERE key = ?')
  const setMeta = db.prepare(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  )

  return {
    async append(rows, receivedAt = Date.now()) {
      insertMany(rows, receivedAt)
    },
    async lastAccepted() {
      // SQLite takes bare columns (signature) from the row holding the MAX
      const rows = db
        .prepare('SELECT device, MAX(seq) AS seq, signature FROM readings GROUP BY device')
        .all() as { device: string; seq: string; signature: Hex }[]
      return new Map(rows.map((r) => [r.device, { seq: BigInt(r.seq), signature: r.signature }]))
    },
    async epochReadings(epoch) {
      return (epochReadings.all(epoch) as ReadingRow[]).map(toReading)
    },
    async saveBatch(batch, sealedAt) {
      insertBatch.run(batch.epoch, batch.hash, batch.count, sealedAt, Buffer.from(batch.bytes))
    },
    async batch(epoch) {
      return toBatchWithBytes(batchByEpoch.get(epoch) as BatchRow | undefined)
    },
    async batchByHash(hash) {
      return toBatchWithBytes(batchByHash.get(hash.toLowerCase()) as BatchRow | undefined)
    },
    async batches(limit = 100) {
      return (latestBatches.all(limit) as BatchRow[]).map(toBatch)
    },
    async lastSealedEpoch() {
      const row = db.prepare('SELECT MAX(epoch) AS epoch FROM batches').get() as { epoch: number | null }
      return row.epoch === null ? undefined : BigInt(row.epoch)
    },
    async getMeta(key) {
      return (getMeta.get(key) as { value: string } | undefined)?.value
    },
    async setMeta(key, value) {
      setMeta.run(key, value)
    },
    async readingCount() {
      return (db.prepare('SELECT COUNT(*) AS n FROM readings').get() as { n: number }).n
    },
    async close() {
      db.close()
    },
  }
}

function postgresGatewayStore(pool: pg.Pool): GatewayStore {
  const batchColumns = 'epoch, hash, count, sealed_at, bytes'
  return {
    async append(rows, receivedAt = Date.now()) {
      if (rows.length === 0) return
      // one statement (atomic on its own) with a column array per field: one round trip per batch
      const columns: unknown[][] = [[], [], [], [], [], [], []]
      for (const row of rows) {
        const values = columnsOf(row)
        for (let i = 0; i < values.length; i++) (columns[i] as unknown[]).push(values[i])
      }
      await pool.query(
        `INSERT INTO readings (epoch, device, seq, time, reading_values, signature, kind, received_at)
         SELECT e, d, s, t, v, sig, k, $8 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[],
           $5::text[], $6::text[], $7::int[]) AS r (e, d, s, t, v, sig, k)`,
        [...columns.map((column) => column.map(String)), receivedAt],
      )
    },
    async lastAccepted() {
      const { rows } = await pool.query<{ device: string; seq: string; signature: Hex }>(
        'SELECT DISTINCT ON (device) device, seq, signature FROM readings ORDER BY device, seq DESC',
      )
      return new Map(rows.map((r) => [r.device, { seq: BigInt(r.seq), signature: r.signature }]))
    },
    async epochReadings(epoch) {
      const { rows } = await pool.query<ReadingRow>(
        'SELECT device, seq, time, reading_values, signature, kind FROM readings WHERE epoch = $1 ORDER BY device, seq',
        [epoch.toString()],
      )
      return rows.map(toReading)
    },
    async saveBatch(batch, sealedAt) {
      await pool.query(`INSERT INTO batches (${batchColumns}) VALUES ($1, $2, $3, $4, $5)`, [
        batch.epoch.toString(),
        batch.hash,
        batch.count,
        sealedAt.toString(),
        Buffer.from(batch.bytes),
      ])
    },
    async batch(epoch) {
      const { rows } = await pool.query<BatchRow>(`SELECT ${batchColumns} FROM batches WHERE epoch = $1`, [
        epoch.toString(),
      ])
      return toBatchWithBytes(rows[0])
    },
    async batchByHash(hash) {
      const { rows } = await pool.query<BatchRow>(`SELECT ${batchColumns} FROM batches WHERE hash = $1`, [
        hash.toLowerCase(),
      ])
      return toBatchWithBytes(rows[0])
    },
    async batches(limit = 100) {
      const { rows } = await pool.query<BatchRow>(
        'SELECT epoch, hash, count, sealed_at FROM batches ORDER BY epoch DESC LIMIT $1',
        [limit],
      )
      return rows.map(toBatch)
    },
    async lastSealedEpoch() {
      const { rows } = await pool.query<{ epoch: string | null }>('SELECT MAX(epoch) AS epoch FROM batches')
      const epoch = rows[0]?.epoch
      return epoch === null || epoch === undefined ? undefined : BigInt(epoch)
    },
    async getMeta(key) {
      const { rows } = await pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key])
      return rows[0]?.value
    },
    async setMeta(key, value) {
      await pool.query(
        'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      )
    },
    async readingCount() {
      const { rows } = await pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM readings')
      return Number(rows[0]?.n ?? 0)
    },
    async close() {
      await pool.end()
    },
  }
}
