import Database from 'better-sqlite3'
import type { Hex } from 'viem'
import { DepinError } from '../errors.ts'

/** Bumped whenever a table changes; a database of a newer version is refused, an older one migrated. */
export const INDEXER_SCHEMA_VERSION = 6

export type IndexerDatabase = Database.Database

/** The last block the indexer has fully processed; every event up to it is stored, none after it. */
export type IndexerCursor = { block: bigint; hash: Hex; timestamp: bigint }

/**
 * Schema v1. Amounts (uint256) are decimal TEXT; block numbers, timestamps, epochs and H3 cells
 * (< 2^60: the registry only accepts mode-1 indexes) fit SQLite's signed 64-bit INTEGER.
 * Addresses are stored checksummed and compared case-insensitively.
 */
const schemaV1 = `
CREATE TABLE IF NOT EXISTS cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  block INTEGER NOT NULL,
  hash TEXT NOT NULL,
  timestamp INTEGER NOT NULL
);
-- append-only: one row per device event with the device's state right after it
CREATE TABLE IF NOT EXISTS device_events (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  block_timestamp INTEGER NOT NULL,
  tx_hash TEXT NOT NULL,
  device TEXT NOT NULL COLLATE NOCASE,
  kind TEXT NOT NULL CHECK (kind IN ('registered', 'transferred', 'relocated', 'retired')),
  owner TEXT NOT NULL,
  class INTEGER NOT NULL,
  cell INTEGER NOT NULL,
  registered_at INTEGER NOT NULL,
  PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS device_events_by_time ON device_events (block_timestamp);
-- latest state per device
CREATE TABLE IF NOT EXISTS devices (
  device TEXT PRIMARY KEY COLLATE NOCASE,
  owner TEXT NOT NULL COLLATE NOCASE,
  class INTEGER NOT NULL,
  cell INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
  registered_at INTEGER NOT NULL,
  maker TEXT NOT NULL,
  updated_block INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_by_owner ON devices (owner);
CREATE TABLE IF NOT EXISTS validators (
  validator TEXT PRIMARY KEY COLLATE NOCASE,
  status TEXT NOT NULL CHECK (status IN ('active', 'unbonding', 'withdrawn', 'slashed')),
  bond TEXT NOT NULL,
  joined_at INTEGER NOT NULL,
  updated_block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
  epoch INTEGER PRIMARY KEY,
  readings_root TEXT NOT NULL,
  rewards_root TEXT NOT NULL,
  total TEXT NOT NULL,
  accepted INTEGER NOT NULL,
  signers TEXT NOT NULL,
  submitter TEXT NOT NULL,
  tx_hash TEXT NOT NULL,
  block INTEGER NOT NULL,
  timestamp INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS epoch_funding (
  epoch INTEGER PRIMARY KEY,
  rewards_root TEXT NOT NULL,
  minted TEXT NOT NULL,
  from_fees TEXT NOT NULL,
  block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS equivocations (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  validator TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  prover TEXT NOT NULL,
  slashed TEXT NOT NULL,
  tx_hash TEXT NOT NULL,
  PRIMARY KEY (block, log_index)
);
CREATE TABLE IF NOT EXISTS claims (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  account TEXT NOT NULL COLLATE NOCASE,
  amount TEXT NOT NULL,
  cumulative_amount TEXT NOT NULL,
  submitter TEXT NOT NULL,
  tx_hash TEXT NOT NULL,
  PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS claims_by_account ON claims (account);
`

/** Schema v2 adds the gateway list's history (DeviceRegistry's gateway events) and validators' endpoints. */
const schemaV2 = `
-- append-only: one row per gateway event; url is the gateway's URL after it ('' once removed)
CREATE TABLE IF NOT EXISTS gateway_events (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  block_timestamp INTEGER NOT NULL,
  tx_hash TEXT NOT NULL,
  gateway TEXT NOT NULL COLLATE NOCASE,
  kind TEXT NOT NULL CHECK (kind IN ('added', 'url_changed', 'removed')),
  url TEXT NOT NULL,
  PRIMARY KEY (block, log_index)
);
-- the latest endpoint each validator advertised (ValidatorSet.setEndpoint)
CREATE TABLE IF NOT EXISTS validator_endpoints (
  validator TEXT PRIMARY KEY COLLATE NOCASE,
  url TEXT NOT NULL,
  updated_block INTEGER NOT NULL
);
`

/** Schema v3: the validator set's history, so that the set as of any time can be read. */
const schemaV3 = `
-- append-only: one row per change of a validator's status (ValidatorSet events)
CREATE TABLE IF NOT EXISTS validator_events (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  block_timestamp INTEGER NOT NULL,
  tx_hash TEXT NOT NULL,
  validator TEXT NOT NULL COLLATE NOCASE,
  kind TEXT NOT NULL CHECK (kind IN ('joined', 'left', 'withdrew', 'slashed')),
  PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS validator_events_by_time ON validator_events (block_timestamp);
`

/** Schema v5: the DataMarket's provider list and redemptions. */
const schemaV5 = `
-- append-only: one row per provider event; url is the provider's URL after it ('' once removed)
CREATE TABLE IF NOT EXISTS provider_events (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  block_timestamp INTEGER NOT NULL,
  tx_hash TEXT NOT NULL,
  provider TEXT NOT NULL COLLATE NOCASE,
  kind TEXT NOT NULL CHECK (kind IN ('added', 'url_changed', 'removed')),
  url TEXT NOT NULL,
  PRIMARY KEY (block, log_index)
);
-- one row per redeemed voucher (DataMarket.Redeemed)
CREATE TABLE IF NOT EXISTS redemptions (
  block INTEGER NOT NULL,
  log_index INTEGER NOT NULL,
  block_timestamp INTEGER NOT NULL,
  tx_hash TEXT NOT NULL,
  consumer TEXT NOT NULL COLLATE NOCASE,
  provider TEXT NOT NULL COLLATE NOCASE,
  amount TEXT NOT NULL,
  cumulative_amount TEXT NOT NULL,
  served TEXT NOT NULL,
  served_count INTEGER NOT NULL,
  PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS redemptions_by_time ON redemptions (block_timestamp);
CREATE INDEX IF NOT EXISTS redemptions_by_pair ON redemptions (consumer, provider, block);
`

/**
 * Schema v6: what a reorg's rollback needs (src/indexer/rollBack.ts): the hashes of blocks the
 * indexer processed, within the finality window, and each state row as it was before a change.
 */
const schemaV6 = `
-- processed blocks' hashes (range ends; dense near the head): a reorg's common ancestor is the
-- newest of them still on the chain
CREATE TABLE IF NOT EXISTS block_hashes (
  block INTEGER PRIMARY KEY,
  hash TEXT NOT NULL,
  timestamp INTEGER NOT NULL
);
-- a state table's row as it was before the change an event at \`block\` made (NULL: it did not exist)
CREATE TABLE IF NOT EXISTS undo_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  block INTEGER NOT NULL,
  tbl TEXT NOT NULL,
  key TEXT NOT NULL,
  prior TEXT
);
CREATE INDEX IF NOT EXISTS undo_log_by_block ON undo_log (block);
`

/** Tables of events, each row at a block: a rollback deletes those past the common ancestor. */
export const EVENT_TABLES = [
  'device_events',
  'gateway_events',
  'validator_events',
  'provider_events',
  'redemptions',
  'epochs',
  'epoch_funding',
  'equivocations',
  'claims',
] as const

/** Tables of current state (one row per key), with the key column: a rollback restores their rows. */
export const STATE_TABLES = {
  devices: 'device',
  validators: 'validator',
  validator_endpoints: 'validator',
} as const

/** Every table filled from the chain: a migration that needs history not kept so far empties them. */
const INDEXED_TABLES = [
  'cursor',
  'device_events',
  'devices',
  'validators',
  'epochs',
  'epoch_funding',
  'equivocations',
  'claims',
  'gateway_events',
  'validator_endpoints',
  'validator_events',
  'provider_events',
  'redemptions',
  'block_hashes',
  'undo_log',
]

export type OpenIndexerDatabaseOptions = {
  /** Open an existing database for reading only (another process indexes into it). */
  readonly?: boolean
}

/**
 * Opens (creating when missing) the indexer's SQLite file in WAL mode and brings its schema to
 * INDEXER_SCHEMA_VERSION. Integers are read as bigint.
 */
export function openIndexerDatabase(
  dbPath: string,
  options: OpenIndexerDatabaseOptions = {},
): IndexerDatabase {
  const db = options.readonly
    ? new Database(dbPath, { readonly: true, fileMustExist: true })
    : new Database(dbPath)
  try {
    db.defaultSafeIntegers(true)
    if (!options.readonly) {
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      migrate(db)
    }
    const version = schemaVersion(db)
    if (version !== INDEXER_SCHEMA_VERSION) {
      throw new DepinError(
        'INDEXER_SCHEMA_MISMATCH',
        `indexer database ${dbPath} has schema version ${version ?? 'none'}, this code reads version ${INDEXER_SCHEMA_VERSION}`,
        { details: { dbPath, version, expected: INDEXER_SCHEMA_VERSION } },
      )
    }
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

function migrate(db: IndexerDatabase): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
    const version = schemaVersion(db)
    if (version !== undefined && version > INDEXER_SCHEMA_VERSION) return // refused by the caller
    db.exec(schemaV1)
    // v1 databases come from contracts without gateway or endpoint events: v2 only adds their tables
    db.exec(schemaV2)
    db.exec(schemaV3)
    db.exec(schemaV5)
    // v6 only adds tables: a reorg before this version's first blocks is refused as too deep
    db.exec(schemaV6)
    // v4: an epoch's receipts root (ReportAccepted carries it)
    const epochColumns = db.prepare<[], { name: string }>('PRAGMA table_info(epochs)').all()
    if (!epochColumns.some((column) => column.name === 'receipts_root'))
      db.exec(`ALTER TABLE epochs ADD COLUMN receipts_root TEXT NOT NULL DEFAULT ''`)
    // v3 keeps the validator set's history and v4 the receipts roots, which older versions did not:
    // they index again from the deployment's first block (the indexer is a function of the chain;
    // nothing else is lost)
    // v5 follows the DataMarket, which contracts of earlier versions did not have
    if (version !== undefined && version < 5)
      for (const table of INDEXED_TABLES) db.exec(`DELETE FROM ${table}`)
    writeMeta(db, 'schema_version', String(INDEXER_SCHEMA_VERSION))
  }).immediate()
}

function schemaVersion(db: IndexerDatabase): number | undefined {
  const value = readMeta(db, 'schema_version')
  return value === undefined ? undefined : Number(value)
}

/** A value of the `meta` table (schema version, the deployment indexed). */
export function readMeta(db: IndexerDatabase, key: string): string | undefined {
  const row = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)
  return row?.value
}

export function writeMeta(db: IndexerDatabase, key: string, value: string): void {
  db.prepare<[string, string]>(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  ).run(key, value)
}

/** The stored cursor, if any block was processed. */
export function readCursor(db: IndexerDatabase): IndexerCursor | undefined {
  const row = db
    .prepare<[], { block: bigint; hash: Hex; timestamp: bigint }>(
      'SELECT block, hash, timestamp FROM cursor WHERE id = 1',
    )
    .get()
  return row && { block: row.block, hash: row.hash, timestamp: row.timestamp }
}
