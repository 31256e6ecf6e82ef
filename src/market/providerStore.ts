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
import { NOTHING_SERVED, type SignedVoucher } from './voucher.ts'

const SCHEMA_VERSION = 1

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
    CREATE TABLE IF NOT EXISTS served (
      consumer TEXT NOT NULL,
      position INTEGER NOT NULL,
      epoch INTEGER NOT NULL,
      digest TEXT NOT NULL,
      device TEXT NOT NULL,
      PRIMARY KEY (consumer, position)
    ) WITHOUT ROWID;
  `)
  db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(
    'schema_version',
    String(SCHEMA_VERSION),
  )
  db.defaultSafeIntegers(true)

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
  const insertServed = db.prepare(
    'INSERT INTO served (consumer, position, epoch, digest, device) VALUES (?, ?, ?, ?, ?)',
  )
  const selectServed = db.prepare(
    'SELECT position, epoch, digest, device FROM served WHERE consumer = ? AND position >= ? AND position < ? ORDER BY position',
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
      let position = current.servedCount
      for (const r of next.readings) {
        insertServed.run(consumer.toLowerCase(), position, r.epoch, r.digest, r.device.toLowerCase())
        position++
      }
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
      return (
        selectServed.all(consumer.toLowerCase(), from, to) as {
          position: bigint
          epoch: bigint
          digest: string
          device: string
        }[]
      ).map((r) => ({
        position: r.position,
        epoch: r.epoch,
        digest: r.digest as Hex,
        device: r.device as Address,
      }))
    },
    consumers: () => (selectConsumers.all() as { consumer: string }[]).map((r) => r.consumer as Address),
    close: () => db.close(),
  }
}
