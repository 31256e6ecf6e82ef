/**
 * Reorg safety for the indexer. The chain can replace its newest blocks; the indexer then holds
 * events of blocks that are no longer the chain's. It keeps, for the last `finality` blocks below
 * its cursor, the hashes of blocks it processed (every range end; ranges are short near the head)
 * and every state row as it was before an event changed it (the undo log). On a reorg it finds the
 * newest processed block whose hash is still the chain's (the common ancestor), and in one
 * transaction restores the state rows, deletes the events past it and moves the cursor back to
 * it; the indexer then replays from there. A reorg whose ancestor is older than that window is
 * beyond the finality setting: the indexer halts with INDEXER_REORG_TOO_DEEP and changes nothing.
 */
import type { Hex } from 'viem'
import {
  EVENT_TABLES,
  type IndexerCursor,
  type IndexerDatabase,
  STATE_TABLES,
} from './openIndexerDatabase.ts'

/** Blocks below the cursor a reorg can reach and still be rolled back (default of `finality`). */
export const DEFAULT_FINALITY = 64n

type StateTable = keyof typeof STATE_TABLES

/** JSON that keeps SQLite's 64-bit integers (read as bigint) exact. */
const toJson = (row: unknown) =>
  JSON.stringify(row, (_, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v))
const fromJson = (text: string) =>
  JSON.parse(text, (_, v) =>
    v && typeof v === 'object' && typeof v.$bigint === 'string' ? BigInt(v.$bigint) : v,
  ) as Record<string, unknown>

/** The undo log: each state row as it was before an event at `block` changed it. */
export function createUndoLog(db: IndexerDatabase) {
  const select = Object.fromEntries(
    Object.entries(STATE_TABLES).map(([table, key]) => [
      table,
      db.prepare(`SELECT * FROM ${table} WHERE ${key} = ?`),
    ]),
  ) as Record<StateTable, ReturnType<IndexerDatabase['prepare']>>
  const insert = db.prepare('INSERT INTO undo_log (block, tbl, key, prior) VALUES (?, ?, ?, ?)')
  const prune = db.prepare('DELETE FROM undo_log WHERE block < ?')
  return {
    /** Records `table`'s row of `key` as it is now, before the event at `block` changes it. */
    remember(table: StateTable, key: string, block: bigint): void {
      const row = select[table].get(key)
      insert.run(block, table, key, row === undefined ? null : toJson(row))
    },
    /** Forgets what no rollback can need any more: the rows of changes below `block`. */
    prune(block: bigint): void {
      prune.run(block)
    },
  }
}

/**
 * The common ancestor: the newest processed block (of those whose hashes are kept) that is still
 * the chain's at its height, or undefined when none is (the reorg is beyond the finality window).
 * @param hashAt the chain's block hash at a height (undefined above its head)
 */
export async function findCommonAncestor(
  db: IndexerDatabase,
  hashAt: (block: bigint) => Promise<Hex | undefined>,
): Promise<IndexerCursor | undefined> {
  const kept = db
    .prepare<[], { block: bigint; hash: Hex; timestamp: bigint }>(
      'SELECT block, hash, timestamp FROM block_hashes ORDER BY block DESC',
    )
    .all()
  for (const candidate of kept) {
    if ((await hashAt(candidate.block)) === candidate.hash) return candidate
  }
  return undefined
}

/**
 * Rolls the database back to `ancestor` in one transaction: state rows restored from the undo
 * log, newest change first; events, undo rows and block hashes past it deleted; the cursor set to
 * it. Returns how many events were dropped.
 */
export function rollBackTo(db: IndexerDatabase, ancestor: IndexerCursor): number {
  return db
    .transaction(() => {
      const undone = db
        .prepare<[bigint], { tbl: StateTable; key: string; prior: string | null }>(
          'SELECT tbl, key, prior FROM undo_log WHERE block > ? ORDER BY seq DESC',
        )
        .all(ancestor.block)
      for (const { tbl, key, prior } of undone) {
        if (!Object.hasOwn(STATE_TABLES, tbl)) throw new Error(`the undo log names an unknown table ${tbl}`)
        const column = STATE_TABLES[tbl]
        db.prepare(`DELETE FROM ${tbl} WHERE ${column} = ?`).run(key)
        if (prior === null) continue
        const row = fromJson(prior)
        const columns = Object.keys(row)
        db.prepare(
          `INSERT INTO ${tbl} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`,
        ).run(row)
      }
      db.prepare('DELETE FROM undo_log WHERE block > ?').run(ancestor.block)
      let dropped = 0
      for (const table of EVENT_TABLES)
        dropped += db.prepare(`DELETE FROM ${table} WHERE block > ?`).run(ancestor.block).changes
      db.prepare('DELETE FROM block_hashes WHERE block > ?').run(ancestor.block)
      db.prepare(
        `INSERT INTO cursor (id, block, hash, timestamp) VALUES (1, @block, @hash, @timestamp)
       ON CONFLICT (id) DO UPDATE SET block = excluded.block, hash = excluded.hash, timestamp = excluded.timestamp`,
      ).run(ancestor)
      return dropped
    })
    .immediate()
}
