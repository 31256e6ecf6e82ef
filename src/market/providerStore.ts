/**
 * A data-market provider's SQLite store (WAL, synchronous FULL): per consumer, what it served
 * (the running `served` commitment, its count and the sum of the prices, `owed`), the latest voucher
 * the consumer signed for it (what the provider can redeem), and every reading it served, in order
 * (what it publishes so that validators credit the fees: src/market/README.md). A paid answer is
 * sent only after the transaction recording it commits, so a provider never serves what it cannot
 * later show.
 *
 * Writes go through one worker thread (providerStoreWorker.ts) holding its own connection, so a
 * paid answer's commit (its fsync, the served commitment's keccaks, the packing) never stalls the
 * API's event loop; answers recorded while a commit is on its way share the next one (group
 * commit). Reads (channels, served readings) are the calling thread's, on the committed state.
 */
import type Database from 'better-sqlite3'
import type { Address, Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import { spawnModuleWorker } from '../protocol/spawnModuleWorker.ts'
import { openSqlite } from '../protocol/sqlDatabase.ts'
import { NOTHING_SERVED, type SignedVoucher, signedVoucherToJson } from './voucher.ts'

/** 2: the readings of an answer in one row (`answers`), no longer a row per reading (`served`). */
const SCHEMA_VERSION = 2

/** Most readings one recorded answer holds (a stream's part is the largest: MAX_STREAM_READINGS). */
export const MAX_ANSWER_READINGS = 10_000

/** One served reading in an answer's row: epoch (uint64, big-endian), digest (32 bytes), device (20). */
const ITEM_BYTES = 60

/** Packs readings into an answer's items (the schema 1 → 2 migration's; the writer packs its own). */
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

/**
 * Opens (creating or migrating) a provider store's database: WAL, synchronous FULL, schema
 * SCHEMA_VERSION. The writer worker opens it again for its own connection.
 */
export function openProviderDatabase(path: string): Database.Database {
  const db = openSqlite(path)
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

  return db
}

type ChannelRow = {
  consumer: string
  owed: string
  served: string
  served_count: bigint
  voucher: string | null
}

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

const voucherToJson = (v: SignedVoucher) => JSON.stringify(signedVoucherToJson(v))

/** Reads a consumer's channel from a provider database. */
function channelReader(db: Database.Database) {
  const selectChannel = db.prepare(
    'SELECT consumer, owed, served, served_count, voucher FROM channels WHERE consumer = ?',
  )
  return (consumer: Address): ChannelState => {
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
}

/**
 * A paid answer to record, as it travels to the writer: the answer's readings packed into hex
 * strings (a digest 64 characters, a device 40, in order) and their epochs, so that the copy to
 * the worker is a few flat values, not hundreds of objects.
 */
export type AnswerWrite = {
  /** The channel as the caller last saw it: if it moved on meanwhile, nothing is written. */
  expected: { owed: bigint; servedCount: bigint }
  /** The voucher that settled everything served before. */
  voucher: SignedVoucher
  /** Everything owed once this answer is served. */
  owed: bigint
  epochs: BigUint64Array
  digests: string
  devices: string
}

/** Where an answer left the channel: the new commitment and its count. */
export type AnswerRecorded = { served: Hex; servedCount: bigint }

/**
 * The writes of a provider database (its writer worker's), each synchronous; the caller commits.
 * `recordAnswer` checks the channel is as expected, extends its commitment with the answer's
 * digests, stores the readings and the voucher; `recordVoucher` stores a voucher that settles the
 * channel exactly as it stands. Either returns false, writing nothing, when the channel moved on.
 */
export function createProviderWrites(db: Database.Database, keccak: Keccak256) {
  const channel = channelReader(db)
  const upsertChannel = db.prepare(
    `INSERT INTO channels (consumer, owed, served, served_count, voucher) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (consumer) DO UPDATE SET owed = excluded.owed, served = excluded.served,
       served_count = excluded.served_count, voucher = excluded.voucher`,
  )
  const insertAnswer = db.prepare('INSERT INTO answers (consumer, first, count, items) VALUES (?, ?, ?, ?)')
  const pair = Buffer.alloc(64)

  // each write a transaction of its own (a savepoint inside the worker's group commit): one that
  // throws halfway leaves nothing of itself behind, the others' writes stand
  const recordAnswer = db.transaction((write: AnswerWrite): AnswerRecorded | false => {
    const count = write.epochs.length
    if (count > MAX_ANSWER_READINGS)
      throw new RangeError(`an answer of ${count} readings: at most ${MAX_ANSWER_READINGS}`)
    const digests = Buffer.from(write.digests, 'hex')
    const devices = Buffer.from(write.devices, 'hex')
    // Buffer's hex decoding stops at the first character that is not hex: fewer bytes
    if (
      write.digests.length !== 64 * count ||
      digests.length !== 32 * count ||
      write.devices.length !== 40 * count ||
      devices.length !== 20 * count
    )
      throw new RangeError('a served reading must have a 32-byte digest and a 20-byte device address')
    const consumer = write.voucher.consumer
    const current = channel(consumer)
    if (current.owed !== write.expected.owed || current.servedCount !== write.expected.servedCount)
      return false
    const items = Buffer.alloc(count * ITEM_BYTES)
    pair.write(current.served.slice(2), 0, 32, 'hex')
    for (let i = 0; i < count; i++) {
      const at = i * ITEM_BYTES
      items.writeBigUInt64BE(write.epochs[i] as bigint, at)
      digests.copy(items, at + 8, 32 * i, 32 * i + 32)
      devices.copy(items, at + 40, 20 * i, 20 * i + 20)
      // the served commitment, as extendServed (src/market/voucher.ts) folds it: the tests cross-check
      digests.copy(pair, 32, 32 * i, 32 * i + 32)
      pair.set(keccak(pair), 0)
    }
    const served: Hex = `0x${pair.toString('hex', 0, 32)}`
    if (count > 0) insertAnswer.run(consumer.toLowerCase(), current.servedCount, count, items)
    const servedCount = current.servedCount + BigInt(count)
    upsertChannel.run(
      consumer.toLowerCase(),
      write.owed.toString(),
      served,
      servedCount,
      voucherToJson(write.voucher),
    )
    return { served, servedCount }
  })

  const recordVoucher = db.transaction((voucher: SignedVoucher): boolean => {
    const current = channel(voucher.consumer)
    if (
      voucher.cumulativeAmount !== current.owed ||
      voucher.servedCount !== current.servedCount ||
      voucher.served !== current.served
    )
      return false
    upsertChannel.run(
      voucher.consumer.toLowerCase(),
      current.owed.toString(),
      current.served,
      current.servedCount,
      voucherToJson(voucher),
    )
    return true
  })

  return { recordAnswer, recordVoucher }
}

/** A write for the worker (or 'close'), and what it answers. */
export type WriterRequest =
  | { id: number; type: 'answer'; write: AnswerWrite }
  | { id: number; type: 'voucher'; voucher: SignedVoucher }
export type WriterResponse =
  | { id: number; ok: true; result: AnswerRecorded | boolean }
  | { id: number; ok: false; error: { name: string; message: string } }
export type WriterData = { path: string }

/** How long a closing writer may take to commit what it holds before it is terminated, ms. */
const CLOSE_GRACE_MS = 10_000

export type OpenProviderStoreOptions = {
  /** Called once if the writer fails; every write then rejects with PROVIDER_STORE_FAILED. */
  onFailure?: (error: DepinError) => void
}

export type ProviderStore = ReturnType<typeof openProviderStore>

export function openProviderStore(path: string, options: OpenProviderStoreOptions = {}) {
  const db = openProviderDatabase(path)
  const channel = channelReader(db)
  // the answers overlapping [from, to): none starts more than MAX_ANSWER_READINGS before `from`
  const selectAnswers = db.prepare(
    'SELECT first, count, items FROM answers WHERE consumer = ? AND first > ? AND first < ? ORDER BY first',
  )
  const selectConsumers = db.prepare('SELECT consumer FROM channels ORDER BY consumer')

  const worker = spawnModuleWorker(import.meta.url, 'providerStoreWorker', { path } satisfies WriterData)
  type Pending = { resolve: (result: AnswerRecorded | boolean) => void; reject: (error: Error) => void }
  const pending = new Map<number, Pending>()
  let nextId = 0
  let failure: DepinError | undefined
  let closing = false
  const fail = (error: DepinError, report: boolean) => {
    if (failure) return
    failure = error
    for (const p of pending.values()) p.reject(error)
    pending.clear()
    if (report) options.onFailure?.(error)
  }
  worker.on('message', (response: WriterResponse) => {
    const p = pending.get(response.id)
    if (!p) return
    pending.delete(response.id)
    if (response.ok) p.resolve(response.result)
    else {
      const { name, message } = response.error
      p.reject(
        name === 'RangeError'
          ? new RangeError(message)
          : new DepinError('PROVIDER_STORE_WRITE_FAILED', message),
      )
    }
  })
  worker.on('error', (error) =>
    fail(
      new DepinError('PROVIDER_STORE_FAILED', `the provider store's writer failed: ${error.message}`),
      true,
    ),
  )
  let exited = false
  worker.on('exit', (code) => {
    exited = true
    if (!closing)
      fail(new DepinError('PROVIDER_STORE_FAILED', `the provider store's writer exited (code ${code})`), true)
  })

  const send = (request: WriterRequest): Promise<AnswerRecorded | boolean> =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure)
      pending.set(request.id, { resolve, reject })
      worker.postMessage(request)
    })

  return {
    channel,
    /**
     * Records a paid answer (createProviderWrites' recordAnswer) and resolves once it is on disk
     * with the channel's new commitment, or with undefined when another answer moved the channel
     * on first (then nothing was written). What an API answers with must wait for it.
     */
    async recordAnswer(
      expected: { owed: bigint; servedCount: bigint },
      next: { voucher: SignedVoucher; owed: bigint; readings: readonly Omit<ServedReading, 'position'>[] },
    ): Promise<AnswerRecorded | undefined> {
      const { readings } = next
      const epochs = new BigUint64Array(readings.length)
      let digests = ''
      let devices = ''
      for (const [i, r] of readings.entries()) {
        if (r.digest?.length !== 66 || r.device?.length !== 42)
          throw new RangeError(
            `a served reading must have a 32-byte digest and an address: ${r.digest}, ${r.device}`,
          )
        epochs[i] = r.epoch
        digests += r.digest.slice(2)
        devices += r.device.slice(2)
      }
      const write: AnswerWrite = {
        expected,
        voucher: next.voucher,
        owed: next.owed,
        epochs,
        digests,
        devices,
      }
      const result = await send({ id: nextId++, type: 'answer', write })
      return result === false ? undefined : (result as AnswerRecorded)
    },
    /** Records a voucher settling the channel exactly as it stands; false if it no longer does. */
    recordVoucher: async (voucher: SignedVoucher): Promise<boolean> =>
      (await send({ id: nextId++, type: 'voucher', voucher })) === true,
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
    /** Lets the writer commit what it was given, then closes both connections. */
    async close(): Promise<void> {
      if (closing) return
      closing = true
      // a writer that died already is not waited for
      const ended = new Promise<boolean>((resolve) => {
        if (exited) return resolve(true)
        worker.once('exit', () => resolve(true))
        setTimeout(() => resolve(false), CLOSE_GRACE_MS).unref()
      })
      worker.postMessage('close')
      if (!(await ended)) await worker.terminate()
      fail(new DepinError('PROVIDER_STORE_CLOSED', 'the provider store is closed'), false)
      db.close()
    },
  }
}
