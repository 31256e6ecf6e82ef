/**
 * A data-market provider's SQLite store (WAL, synchronous FULL): per consumer, what it served
 * (the running `served` commitment, its count and the sum of the prices, `owed`), the latest voucher
 * the consumer signed for it (what the provider can redeem), and every reading it served, in order
 * (what it publishes so that validators credit the fees: src/market/README.md). A paid answer is
 * sent only after the transaction recording it commits, so a provider never serves what it cannot
 * later show.
 */
import Database from 'better-sqlite3'
import type { Address, Hex } from 'viem'
import { DepinError } from '../errors.ts'
import { NOTHING_SERVED, type SignedVoucher } from './voucher.ts'

/** 2: the readings of an answer in one row (`answers`), no longer a row per reading (`served`). */
const SCHEMA_VERSION = 2

/** Most readings one recorded answer holds (a stream's part is the largest: MAX_STREAM_READINGS). */
export const MAX_ANSWER_READINGS = 10_000

/** One served reading in an answer's row: epoch (uint64, big-endian), digest (32 bytes), device (20). */
const ITEM_BYTES = 60

function packItems(readings: readonly Omit<ServedReading, 'position'>[]): Buffer {
  const bytes = Buffer.alloc(readings.length * ITEM_BYTES)
  for (const [i, r] of readings.entries()) {
    const at = i * ITEM_BYTES
    bytes.writeBigUInt64BE(r.epoch, at)
    if (
      bytes.write(r.digest.slice(2), at + 8, 32, 'hex') !== 32 ||
      r.digest.length !== 66 ||
      bytes.write(r.device.slice(2), at + 40, 20, 'hex') !== 20 ||
      r.device.length !== 42
    )
      throw new RangeError(
        `a served reading must have a 32-byte digest and an address: ${r.digest}, ${r.device}`,
      )
  }
  return bytes
}
/** Where a consumer's channel with this provider stands. */
export type ChannelState = {
  consumer: Address
  /** Sum of the prices of everything served so far. */
  owed: bigint
  /** Running hash of the digests of every reading served so far (src/market/voucher.ts). */
  served: Hex
  servedCount: bigint
  /** The latest voucher the consumer signed (undefined before the first). */
  voucher: SignedVoucher | undefined
}

/** One reading served to a consumer: its place in the consumer's served sequence. */
export type ServedReading = { position: bigint; epoch: bigint; digest: Hex; device: Address }

export type ProviderStore = ReturnType<typeof openProviderStore>

export function openProviderStore(path: string) {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS channels (
      consumer TEXT PRIMARY KEY,
      owed TEXT NOT NULL,
      served TEXT NOT NULL,
      served_count INTEGER NOT NULL,
      voucher TEXT
    );
    -- schema 1: one row per reading served
    CREATE TABLE IF NOT EXISTS served (
      consumer TEXT NOT NULL,
      position INTEGER NOT NULL,
      epoch INTEGER NOT NULL,
      digest TEXT NOT NULL,
      device TEXT NOT NULL,
      PRIMARY KEY (consumer, position)
    ) WITHOUT ROWID;
    -- schema 2: one row per answer, its readings packed (packItems), positions first … first+count−1
    CREATE TABLE IF NOT EXISTS answers (
      consumer TEXT NOT NULL,
      first INTEGER NOT NULL,
      count INTEGER NOT NULL,
      items BLOB NOT NULL,
      PRIMARY KEY (consumer, first)
    ) WITHOUT ROWID;
  `)
  db.defaultSafeIntegers(true)
  const version = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get() as
    | string
    | undefined
  if (version !== undefined && Number(version) > SCHEMA_VERSION) {
    db.close()
    throw new DepinError(
      'STORE_SCHEMA_NEWER',
      `${path} was written by a newer depin (provider store schema ${version}); this one reads ${SCHEMA_VERSION}`,
    )
  }
  // schema 1 → 2: each reading row becomes an answer of one
  db.transaction(() => {
    const old = db
      .prepare('SELECT consumer, position, epoch, digest, device FROM served ORDER BY consumer, position')
      .all() as {
      consumer: string
      position: bigint
      epoch: bigint
      digest: Hex
      device: Address
    }[]
    const insert = db.prepare(
      'INSERT OR IGNORE INTO answers (consumer, first, count, items) VALUES (?, ?, 1, ?)',
    )
    for (const r of old) insert.run(r.consumer, r.position, packItems([r]))
    db.exec('DELETE FROM served')
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(
      'schema_version',
      String(SCHEMA_VERSION),
    )
  }).immediate()

  type ChannelRow = {
    consumer: string
    owed: string
    served: string
    served_count: bigint
    voucher: string | null
  }
  const selectChannel = db.prepare(
    'SELECT consumer, owed, served, served_count, voucher FROM channels WHERE consumer = ?',
  )
  const upsertChannel = db.prepare(
    `INSERT INTO channels (consumer, owed, served, served_count, voucher) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (consumer) DO UPDATE SET owed = excluded.owed, served = excluded.served,
       served_count = excluded.served_count, voucher = excluded.voucher`,
  )
  const insertAnswer = db.prepare('INSERT INTO answers (consumer, first, count, items) VALUES (?, ?, ?, ?)')
  // the answers overlapping [from, to): none starts more than MAX_ANSWER_READINGS before `from`
  const selectAnswers = db.prepare(
    'SELECT first, count, items FROM answers WHERE consumer = ? AND first > ? AND first < ? ORDER BY first',
  )
  const selectConsumers = db.prepare('SELECT consumer FROM channels ORDER BY consumer')

  const voucherFromJson = (json: string): SignedVoucher => {
    const v = JSON.parse(json) as Record<string, string>
    return {
      consumer: v.consumer as Address,
      provider: v.provider as Address,
      cumulativeAmount: BigInt(v.cumulativeAmount as string),
      served: v.served as Hex,
      servedCount: BigInt(v.servedCount as string),
      signature: v.signature as Hex,
    }
  }
  const voucherToJson = (v: SignedVoucher) =>
    JSON.stringify({
      consumer: v.consumer,
      provider: v.provider,
      cumulativeAmount: v.cumulativeAmount.toString(),
      served: v.served,
      servedCount: v.servedCount.toString(),
      signature: v.signature,
    })

  const channel = (consumer: Address): ChannelState => {
    const row = selectChannel.get(consumer.toLowerCase()) as ChannelRow | undefined
    if (!row) return { consumer, owed: 0n, served: NOTHING_SERVED, servedCount: 0n, voucher: undefined }
    return {
      consumer,
      owed: BigInt(row.owed),
      served: row.served as Hex,
      servedCount: row.served_count,
      voucher: row.voucher ? voucherFromJson(row.voucher) : undefined,
    }
  }

  /**
   * Records, in one transaction, the voucher that settled everything served before and what was
   * served now. `expected` is the channel as the caller last saw it: if another request moved it on
   * meanwhile, nothing is written and false is returned (the caller serves nothing).
   */
  const recordServed = db.transaction(
    (
      expected: { owed: bigint; servedCount: bigint },
      next: {
        voucher: SignedVoucher
        owed: bigint
        served: Hex
        readings: readonly Omit<ServedReading, 'position'>[]
      },
    ): boolean => {
      const consumer = next.voucher.consumer
      const current = channel(consumer)
      if (current.owed !== expected.owed || current.servedCount !== expected.servedCount) return false
      if (next.readings.length > MAX_ANSWER_READINGS)
        throw new RangeError(`an answer of ${next.readings.length} readings: at most ${MAX_ANSWER_READINGS}`)
      if (next.readings.length > 0)
        insertAnswer.run(
          consumer.toLowerCase(),
          current.servedCount,
          next.readings.length,
          packItems(next.readings),
        )
      const position = current.servedCount + BigInt(next.readings.length)
      upsertChannel.run(
        consumer.toLowerCase(),
        next.owed.toString(),
        next.served,
        position,
        voucherToJson(next.voucher),
      )
      return true
    },
  )

  /** Records a voucher that settles the channel as it stands (nothing new served). */
  const recordVoucher = (voucher: SignedVoucher): void => {
    const current = channel(voucher.consumer)
    upsertChannel.run(
      voucher.consumer.toLowerCase(),
      current.owed.toString(),
      current.served,
      current.servedCount,
      voucherToJson(voucher),
    )
  }

  /**
   * recordServed calls made within one turn of the event loop, committed together in one
   * transaction: one fsync for the answers of many consumers (group commit). Each keeps its own
   * outcome; one that throws leaves the others recorded.
   */
  let queued: {
    args: Parameters<typeof recordServed>
    resolve: (recorded: boolean) => void
    reject: (error: unknown) => void
  }[] = []
  const commitQueued = db.transaction((items: typeof queued) =>
    items.map((item) => {
      try {
        return { ok: true as const, recorded: recordServed(...item.args) }
      } catch (error) {
        // SQLite rolled the whole transaction back itself (a full disk, an I/O error): nothing of
        // the batch may be committed piecemeal after it, so the batch fails as one
        if (!db.inTransaction) throw error
        return { ok: false as const, error }
      }
    }),
  )
  const flush = () => {
    const items = queued
    queued = []
    try {
      const outcomes = commitQueued.immediate(items)
      for (const [i, outcome] of outcomes.entries()) {
        const item = items[i] as (typeof items)[number]
        if (outcome.ok) item.resolve(outcome.recorded)
        else item.reject(outcome.error)
      }
    } catch (error) {
      for (const item of items) item.reject(error)
    }
  }

  return {
    channel,
    recordServed: (...args: Parameters<typeof recordServed>) => recordServed.immediate(...args),
    /**
     * recordServed, committed with the other calls of this turn of the event loop (one fsync for
     * them all); resolves once it is on disk. What an API answers with must wait for it.
     */
    recordServedSoon: (...args: Parameters<typeof recordServed>): Promise<boolean> =>
      new Promise((resolve, reject) => {
        queued.push({ args, resolve, reject })
        if (queued.length === 1) setImmediate(flush)
      }),
    recordVoucher,
    /** The readings served to `consumer` at positions [from, to), in order. */
    served(consumer: Address, from: bigint, to: bigint): ServedReading[] {
      const rows = selectAnswers.all(consumer.toLowerCase(), from - BigInt(MAX_ANSWER_READINGS), to) as {
        first: bigint
        count: bigint
        items: Buffer
      }[]
      const readings: ServedReading[] = []
      for (const row of rows) {
        for (let i = 0n; i < row.count; i++) {
          const position = row.first + i
          if (position < from || position >= to) continue
          const at = Number(i) * ITEM_BYTES
          readings.push({
            position,
            epoch: row.items.readBigUInt64BE(at),
            digest: `0x${row.items.toString('hex', at + 8, at + 40)}`,
            device: `0x${row.items.toString('hex', at + 40, at + 60)}`,
          })
        }
      }
      return readings
    },
    consumers: () => (selectConsumers.all() as { consumer: string }[]).map((r) => r.consumer as Address),
    close: () => db.close(),
  }
}
