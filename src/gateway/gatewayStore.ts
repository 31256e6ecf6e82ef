import Database from 'better-sqlite3'
import type { Address, Hex } from 'viem'
import type { SignedReading } from '../readings/reading.ts'

const SCHEMA_VERSION = 1

/** seq as 20 zero-padded digits: TEXT order equals numeric order for every uint64. */
const padSeq = (seq: bigint) => seq.toString().padStart(20, '0')

export type StoredBatch = { epoch: bigint; hash: Hex; count: number; sealedAt: bigint }

/**
 * The gateway's SQLite store (WAL). Readings are appended in arrival order — the only index
 * besides the rowid is on epoch, which arrives nearly in order — and acknowledged only after
 * the transaction holding them commits (synchronous FULL: durable across a crash or power loss).
 */
export function createGatewayStore(path: string) {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`
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
    );
  `)
  // a record's kind (its index among the use case's record kinds; 0 the first), added to older files
  const columns = db.prepare('PRAGMA table_info(readings)').all() as { name: string }[]
  if (!columns.some((c) => c.name === 'kind'))
    db.exec('ALTER TABLE readings ADD COLUMN kind INTEGER NOT NULL DEFAULT 0')
  db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(
    'schema_version',
    String(SCHEMA_VERSION),
  )

  const insert = db.prepare(
    'INSERT INTO readings (epoch, device, seq, time, reading_values, signature, received_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  )
  const insertMany = db.transaction(
    (rows: { epoch: bigint; reading: SignedReading }[], receivedAt: number) => {
      for (const { epoch, reading } of rows) {
        insert.run(
          epoch,
          reading.device.toLowerCase(),
          padSeq(reading.seq),
          reading.time,
          JSON.stringify(reading.values.map(String)),
          reading.signature.toLowerCase(),
          receivedAt,
          reading.kind ?? 0,
        )
      }
    },
  )
  const epochReadings = db.prepare(
    'SELECT device, seq, time, reading_values, signature, kind FROM readings WHERE epoch = ? ORDER BY device, seq',
  )
  const insertBatch = db.prepare(
    'INSERT INTO batches (epoch, hash, count, sealed_at, bytes) VALUES (?, ?, ?, ?, ?)',
  )
  const batchByEpoch = db.prepare('SELECT epoch, hash, count, sealed_at, bytes FROM batches WHERE epoch = ?')
  const batchByHash = db.prepare('SELECT epoch, hash, count, sealed_at, bytes FROM batches WHERE hash = ?')
  type BatchRow = {
    epoch: number | bigint
    hash: string
    count: number
    sealed_at: number | bigint
    bytes: Buffer
  }
  const toBatch = (row: BatchRow | undefined) =>
    row && {
      epoch: BigInt(row.epoch),
      hash: row.hash as Hex,
      count: row.count,
      sealedAt: BigInt(row.sealed_at),
      bytes: new Uint8Array(row.bytes),
    }

  return {
    /** Stores accepted readings in one transaction; returns once it is durable. */
    append(rows: { epoch: bigint; reading: SignedReading }[], receivedAt = Date.now()): void {
      insertMany(rows, receivedAt)
    },
    /** The last accepted (seq, signature) per device (lower-case), to rebuild the in-memory replay check. */
    lastAccepted(): Map<string, { seq: bigint; signature: Hex }> {
      // SQLite takes bare columns (signature) from the row holding the MAX
      const rows = db
        .prepare('SELECT device, MAX(seq) AS seq, signature FROM readings GROUP BY device')
        .all() as {
        device: string
        seq: string
        signature: Hex
      }[]
      return new Map(rows.map((r) => [r.device, { seq: BigInt(r.seq), signature: r.signature }]))
    },
    /** An epoch's readings in canonical order (device, seq). */
    epochReadings(epoch: bigint): SignedReading[] {
      return (
        epochReadings.all(epoch) as {
          device: Address
          seq: string
          time: number
          reading_values: string
          signature: Hex
          kind: number
        }[]
      ).map((r) => ({
        device: r.device,
        seq: BigInt(r.seq),
        time: BigInt(r.time),
        values: (JSON.parse(r.reading_values) as string[]).map(BigInt),
        signature: r.signature,
        ...(r.kind ? { kind: r.kind } : {}),
      }))
    },
    saveBatch(batch: { epoch: bigint; hash: Hex; count: number; bytes: Uint8Array }, sealedAt: bigint): void {
      insertBatch.run(batch.epoch, batch.hash, batch.count, sealedAt, Buffer.from(batch.bytes))
    },
    batch(epoch: bigint): (StoredBatch & { bytes: Uint8Array }) | undefined {
      return toBatch(batchByEpoch.get(epoch) as BatchRow | undefined)
    },
    batchByHash(hash: Hex): (StoredBatch & { bytes: Uint8Array }) | undefined {
      return toBatch(batchByHash.get(hash.toLowerCase()) as BatchRow | undefined)
    },
    batches(limit = 100): StoredBatch[] {
      return (
        db
          .prepare('SELECT epoch, hash, count, sealed_at FROM batches ORDER BY epoch DESC LIMIT ?')
          .all(limit) as Omit<BatchRow, 'bytes'>[]
      ).map((r) => ({
        epoch: BigInt(r.epoch),
        hash: r.hash as Hex,
        count: r.count,
        sealedAt: BigInt(r.sealed_at),
      }))
    },
    lastSealedEpoch(): bigint | undefined {
      const row = db.prepare('SELECT MAX(epoch) AS epoch FROM batches').get() as { epoch: number | null }
      return row.epoch === null ? undefined : BigInt(row.epoch)
    },
    getMeta(key: string): string | undefined {
      return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)
        ?.value
    },
    setMeta(key: string, value: string): void {
      db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(key, value)
    },
    readingCount(): number {
      return (db.prepare('SELECT COUNT(*) AS n FROM readings').get() as { n: number }).n
    },
    close(): void {
      db.close()
    },
  }
}
export type GatewayStore = ReturnType<typeof createGatewayStore>
