import type { Hex } from 'viem'
import type { EpochReport } from '../chain/typedData.ts'
import { DepinError } from '../errors.ts'
import { openSqlite } from '../protocol/sqlDatabase.ts'
import {
  fromReadingJson,
  type SignedReading,
  type SignedReadingJson,
  toReadingJson,
} from '../readings/reading.ts'
import { type Receipt, type ReceiptJson, receiptFromJson, receiptToJson } from '../rewards/receiptsTree.ts'

export type EpochResult = {
  epoch: bigint
  report: EpochReport
  digest: Hex
  signature: Hex
  /** Cumulative rewards per account (lower-case) including this epoch. */
  cumulative: Map<string, bigint>
  rejectedByReason: Record<string, number>
  batchHashes: Hex[]
}

/** An accepted reading and its EIP-712 digest (0x hex), a leaf of its epoch's readings tree. */
export type AcceptedReading = { reading: SignedReading; digest: Hex }

export type StoredVerdict = {
  device: string
  seq: bigint
  status: 'accepted' | 'rejected'
  reason: string | null
}

const parseCumulative = (text: string) =>
  new Map(Object.entries(JSON.parse(text) as Record<string, string>).map(([a, v]) => [a, BigInt(v)]))

const json = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v))

/**
 * A validator's own SQLite store: per epoch it judged, the report it signed, the cumulative
 * rewards it computed and every reading's verdict; and the sealed batches it holds, which it
 * serves to its peers by content address.
 */
export function createValidatorStore(path: string) {
  const db = openSqlite(path)
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS epoch_results (
      epoch INTEGER PRIMARY KEY,
      report TEXT NOT NULL,
      digest TEXT NOT NULL,
      signature TEXT NOT NULL,
      cumulative TEXT NOT NULL,
      rejected_by_reason TEXT NOT NULL,
      batch_hashes TEXT NOT NULL
    );
    -- sealed batches held (fetched from gateways or peers), served to peers by content address
    CREATE TABLE IF NOT EXISTS batches (
      hash TEXT PRIMARY KEY,
      epoch INTEGER NOT NULL,
      bytes BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS batches_by_epoch ON batches (epoch);
    -- cumulative rewards after a settled epoch, taken from a peer and checked against the chain's root
    CREATE TABLE IF NOT EXISTS adopted_cumulative (
      epoch INTEGER PRIMARY KEY,
      cumulative TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS verdicts (
      epoch INTEGER NOT NULL,
      device TEXT NOT NULL,
      seq TEXT NOT NULL,
      status TEXT NOT NULL,
      reason TEXT,
      PRIMARY KEY (epoch, device, seq)
    ) WITHOUT ROWID;
    -- the accepted readings of each epoch judged: the leaves of its readings tree, kept for
    -- delivery with proofs (the batches themselves are pruned)
    CREATE TABLE IF NOT EXISTS accepted_readings (
      epoch INTEGER NOT NULL,
      device TEXT NOT NULL,
      seq TEXT NOT NULL,
      time INTEGER NOT NULL,
      reading TEXT NOT NULL,
      digest TEXT NOT NULL,
      PRIMARY KEY (epoch, device, seq)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS accepted_by_device_time ON accepted_readings (device, time);
    -- the reports this validator saw for each settled epoch, by signer: who signed what (a
    -- validator left out of the settled report may have signed it, or another one)
    CREATE TABLE IF NOT EXISTS seen_reports (
      epoch INTEGER NOT NULL,
      signer TEXT NOT NULL,
      digest TEXT NOT NULL,
      PRIMARY KEY (epoch, signer, digest)
    ) WITHOUT ROWID;
    -- epochs this validator judged but did not sign (its slashing protection refused), with why
    CREATE TABLE IF NOT EXISTS abstentions (
      epoch INTEGER PRIMARY KEY,
      reason TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS accepted_by_time ON accepted_readings (time);
    -- usage fees: which device a served reading's digest belongs to, in the epoch that accepted it
    CREATE INDEX IF NOT EXISTS accepted_by_digest ON accepted_readings (epoch, digest);
    -- usage fees each epoch credited through each device (src/market/splitFees.ts), to its owner;
    -- not in the receipt leaf: recomputable by anyone from the providers' served bundles
    CREATE TABLE IF NOT EXISTS usage_fees (
      epoch INTEGER NOT NULL,
      device TEXT NOT NULL,
      amount TEXT NOT NULL,
      PRIMARY KEY (device, epoch)
    ) WITHOUT ROWID;
    -- every scored device's receipt of each epoch judged: the leaves of its receipts tree
    CREATE TABLE IF NOT EXISTS receipts (
      epoch INTEGER NOT NULL,
      device TEXT NOT NULL,
      receipt TEXT NOT NULL,
      PRIMARY KEY (epoch, device)
    ) WITHOUT ROWID;
  `)
  // Schema 2: reports carry a receipts root. A schema-1 store's reports belong to a deployment
  // whose EpochManager this version cannot talk to: refused, rather than read with a root missing.
  const version = (
    db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined
  )?.value
  const judgedBefore = (db.prepare('SELECT COUNT(*) AS n FROM epoch_results').get() as { n: number }).n
  if (version !== undefined && Number(version) > 2) {
    db.close()
    throw new DepinError(
      'STORE_SCHEMA_NEWER',
      `${path} was written by a newer depin (store schema ${version}); this one reads schema 2`,
      { details: { path, schemaVersion: version } },
    )
  }
  if (version === '1' && judgedBefore > 0) {
    db.close()
    throw new DepinError(
      'STORE_SCHEMA_OLD',
      `${path} was written by an older depin (store schema 1: reports without a receipts root), for a deployment this version cannot submit to; start this validator on a new data directory for a new deployment`,
      { details: { path, schemaVersion: version } },
    )
  }
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '2')").run()
  const selectAcceptedDevice = db.prepare(
    'SELECT device FROM accepted_readings WHERE epoch = ? AND digest = ?',
  )
  const insertResult = db.prepare(
    'INSERT OR REPLACE INTO epoch_results (epoch, report, digest, signature, cumulative, rejected_by_reason, batch_hashes) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  const deleteVerdicts = db.prepare('DELETE FROM verdicts WHERE epoch = ?')
  const insertVerdict = db.prepare(
    'INSERT INTO verdicts (epoch, device, seq, status, reason) VALUES (?, ?, ?, ?, ?)',
  )
  const deleteAccepted = db.prepare('DELETE FROM accepted_readings WHERE epoch = ?')
  const insertAccepted = db.prepare(
    'INSERT OR REPLACE INTO accepted_readings (epoch, device, seq, time, reading, digest) VALUES (?, ?, ?, ?, ?, ?)',
  )
  const deleteReceipts = db.prepare('DELETE FROM receipts WHERE epoch = ?')
  const insertReceipt = db.prepare('INSERT INTO receipts (epoch, device, receipt) VALUES (?, ?, ?)')
  const saveResult = db.transaction(
    (
      result: EpochResult,
      verdicts: StoredVerdict[],
      accepted: AcceptedReading[],
      receipts: readonly Receipt[],
      usage: ReadonlyMap<string, bigint>,
    ) => {
      insertResult.run(
        result.epoch,
        json(result.report),
        result.digest,
        result.signature,
        json(Object.fromEntries(result.cumulative)),
        json(result.rejectedByReason),
        json(result.batchHashes),
      )
      deleteVerdicts.run(result.epoch)
      for (const v of verdicts)
        insertVerdict.run(result.epoch, v.device, v.seq.toString(), v.status, v.reason)
      deleteAccepted.run(result.epoch)
      for (const { reading, digest } of accepted) {
        insertAccepted.run(
          result.epoch,
          reading.device.toLowerCase(),
          reading.seq.toString(),
          reading.time,
          // a record of a later kind keeps its kind's index
          JSON.stringify({ ...toReadingJson(reading), ...(reading.kind ? { kindIndex: reading.kind } : {}) }),
          digest,
        )
      }
      deleteReceipts.run(result.epoch)
      for (const receipt of receipts)
        insertReceipt.run(result.epoch, receipt.device.toLowerCase(), JSON.stringify(receiptToJson(receipt)))
      deleteUsage.run(result.epoch)
      for (const [device, amount] of usage)
        insertUsage.run(result.epoch, device.toLowerCase(), amount.toString())
    },
  )
  const deleteUsage = db.prepare('DELETE FROM usage_fees WHERE epoch = ?')
  const insertUsage = db.prepare('INSERT INTO usage_fees (epoch, device, amount) VALUES (?, ?, ?)')
  const selectUsage = db.prepare<[string, string], { epoch: number; amount: string }>(
    'SELECT epoch, amount FROM usage_fees WHERE device = ? AND epoch IN (SELECT value FROM json_each(?))',
  )
  const insertAdopted = db.prepare(
    'INSERT OR REPLACE INTO adopted_cumulative (epoch, cumulative) VALUES (?, ?)',
  )
  const selectAdopted = db.prepare<[bigint], { cumulative: string }>(
    'SELECT cumulative FROM adopted_cumulative WHERE epoch = ?',
  )
  const insertBatch = db.prepare('INSERT OR IGNORE INTO batches (hash, epoch, bytes) VALUES (?, ?, ?)')
  const selectBatch = db.prepare<[string], { bytes: Buffer }>('SELECT bytes FROM batches WHERE hash = ?')
  const deleteBatchesBefore = db.prepare('DELETE FROM batches WHERE epoch < ?')
  const selectJudgedOn = db.prepare<[bigint], { report: string; batch_hashes: string }>(
    'SELECT report, batch_hashes FROM epoch_results WHERE epoch = ?',
  )
  const selectAcceptedBetween = db.prepare<[string, bigint, bigint, string], { one: number }>(
    'SELECT 1 AS one FROM accepted_readings WHERE device = ? AND time >= ? AND time < ? AND epoch IN (SELECT value FROM json_each(?)) LIMIT 1',
  )
  type Row = {
    epoch: number
    report: string
    digest: Hex
    signature: Hex
    cumulative: string
    rejected_by_reason: string
    batch_hashes: string
  }
  const toResult = (row: Row | undefined): EpochResult | undefined => {
    if (!row) return undefined
    const report = JSON.parse(row.report) as Record<string, string | number>
    return {
      epoch: BigInt(row.epoch),
      report: {
        epoch: BigInt(report.epoch as string),
        rulesHash: report.rulesHash as Hex,
        readingsRoot: report.readingsRoot as Hex,
        rewardsRoot: report.rewardsRoot as Hex,
        receiptsRoot: report.receiptsRoot as Hex,
        total: BigInt(report.total as string),
        accepted: Number(report.accepted),
      },
      digest: row.digest,
      signature: row.signature,
      cumulative: parseCumulative(row.cumulative),
      rejectedByReason: JSON.parse(row.rejected_by_reason) as Record<string, number>,
      batchHashes: JSON.parse(row.batch_hashes) as Hex[],
    }
  }
  return {
    /** Records an epoch's result, verdicts, accepted readings and receipts in one transaction. */
    saveResult(
      result: EpochResult,
      verdicts: StoredVerdict[],
      accepted: AcceptedReading[] = [],
      receipts: readonly Receipt[] = [],
      usage: ReadonlyMap<string, bigint> = new Map(),
    ): void {
      saveResult(result, verdicts, accepted, receipts, usage)
    },
    /** The usage fees credited through `device` in each of `epochs` that credited any, by epoch. */
    usageOf(device: string, epochs: readonly bigint[]): Map<bigint, bigint> {
      const rows = selectUsage.all(device.toLowerCase(), JSON.stringify(epochs.map(Number)))
      return new Map(rows.map((r) => [BigInt(r.epoch), BigInt(r.amount)]))
    },
    /** The usage fees an epoch credited, by device (lower-case). */
    usageFeesOf(epoch: bigint): Map<string, bigint> {
      const rows = db.prepare('SELECT device, amount FROM usage_fees WHERE epoch = ?').all(epoch) as {
        device: string
        amount: string
      }[]
      return new Map(rows.map((r) => [r.device, BigInt(r.amount)]))
    },
    /** An epoch's receipts: the leaves of its receipts tree, by device address ascending. */
    receipts(epoch: bigint): Receipt[] {
      return (
        db.prepare('SELECT receipt FROM receipts WHERE epoch = ? ORDER BY device').all(epoch) as {
          receipt: string
        }[]
      ).map((row) => receiptFromJson(JSON.parse(row.receipt) as ReceiptJson))
    },
    /** The epochs (newest first, at most `limit`, below `before` when given) with a receipt of `device`. */
    receiptEpochs(device: string, limit: number, before?: bigint): bigint[] {
      return (
        db
          .prepare('SELECT epoch FROM receipts WHERE device = ? AND epoch < ? ORDER BY epoch DESC LIMIT ?')
          .all(device.toLowerCase(), before ?? Number.MAX_SAFE_INTEGER, limit) as { epoch: number }[]
      ).map((row) => BigInt(row.epoch))
    },
    /**
     * Accepted readings with `from <= time < to` (of one epoch when `epoch` is given), of
     * `devices` (lower-case) when given, ordered by time, device, seq; at most `limit`.
     */
    acceptedReadings(query: {
      from: bigint
      to: bigint
      epoch?: bigint
      devices?: readonly string[]
      limit: number
      /** The newest `limit` of the window instead of the oldest (still in time order). */
      newest?: boolean
    }): (AcceptedReading & { epoch: bigint })[] {
      const conditions = ['time >= ?', 'time < ?']
      const parameters: unknown[] = [query.from, query.to]
      if (query.epoch !== undefined) {
        conditions.push('epoch = ?')
        parameters.push(query.epoch)
      }
      if (query.devices !== undefined) {
        conditions.push('device IN (SELECT value FROM json_each(?))')
        parameters.push(JSON.stringify(query.devices))
      }
      const order = query.newest ? 'time DESC, device DESC, seq DESC' : 'time, device, seq'
      const rows = db
        .prepare(
          `SELECT epoch, reading, digest FROM accepted_readings WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT ?`,
        )
        .all(...parameters, query.limit) as { epoch: number; reading: string; digest: Hex }[]
      if (query.newest) rows.reverse()
      return rows.map((row) => {
        const json = JSON.parse(row.reading) as SignedReadingJson & { kindIndex?: number }
        const reading = fromReadingJson(json)
        return {
          epoch: BigInt(row.epoch),
          reading: json.kindIndex ? { ...reading, kind: json.kindIndex } : reading,
          digest: row.digest,
        }
      })
    },
    /** The digests of an epoch's accepted readings: the leaves of its readings tree. */
    acceptedDigests(epoch: bigint): Hex[] {
      return (
        db.prepare('SELECT digest FROM accepted_readings WHERE epoch = ?').all(epoch) as { digest: Hex }[]
      ).map((row) => row.digest)
    },
    result(epoch: bigint): EpochResult | undefined {
      return toResult(db.prepare('SELECT * FROM epoch_results WHERE epoch = ?').get(epoch) as Row | undefined)
    },
    /** Records cumulative rewards after `epoch` taken from a peer (already checked against the settled root). */
    adoptCumulative(epoch: bigint, cumulative: ReadonlyMap<string, bigint>): void {
      insertAdopted.run(epoch, json(Object.fromEntries(cumulative)))
    },
    adoptedCumulative(epoch: bigint): Map<string, bigint> | undefined {
      const row = selectAdopted.get(epoch)
      return row && parseCumulative(row.cumulative)
    },
    /** Keeps a sealed batch (already checked against its content address). */
    saveBatch(batch: { hash: Hex; epoch: bigint; bytes: Uint8Array }): void {
      insertBatch.run(batch.hash.toLowerCase(), batch.epoch, Buffer.from(batch.bytes))
    },
    batch(hash: Hex): Uint8Array | undefined {
      const row = selectBatch.get(hash.toLowerCase())
      return row && new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength) // no copy
    },
    /** Drops the batches of epochs before `epoch`. */
    pruneBatches(epoch: bigint): void {
      deleteBatchesBefore.run(epoch)
    },
    /** Records the reports seen for a settled epoch: (lower-case signer, digest) pairs. */
    saveSeenReports(epoch: bigint, seen: readonly { signer: string; digest: Hex }[]): void {
      const insert = db.prepare('INSERT OR IGNORE INTO seen_reports (epoch, signer, digest) VALUES (?, ?, ?)')
      db.transaction(() => {
        for (const r of seen) insert.run(epoch, r.signer.toLowerCase(), r.digest.toLowerCase())
      })()
    },
    /** The reports seen for epochs from `from` on: epoch → lower-case signer → digests. */
    seenReports(from: bigint): Map<bigint, Map<string, Set<Hex>>> {
      const rows = db
        .prepare('SELECT epoch, signer, digest FROM seen_reports WHERE epoch >= ?')
        .all(from) as { epoch: number; signer: string; digest: Hex }[]
      const seen = new Map<bigint, Map<string, Set<Hex>>>()
      for (const row of rows) {
        const bySigner = seen.get(BigInt(row.epoch)) ?? new Map<string, Set<Hex>>()
        bySigner.set(row.signer, (bySigner.get(row.signer) ?? new Set()).add(row.digest))
        seen.set(BigInt(row.epoch), bySigner)
      }
      return seen
    },
    /** Records that this validator judged `epoch` but signs nothing for it (it moves on). */
    abstain(epoch: bigint, reason: string): void {
      db.prepare('INSERT OR REPLACE INTO abstentions (epoch, reason) VALUES (?, ?)').run(epoch, reason)
    },
    /** The newest epoch judged: with a result, or abstained from. */
    lastJudgedEpoch(): bigint | undefined {
      const row = db
        .prepare(
          'SELECT MAX(epoch) AS epoch FROM (SELECT epoch FROM epoch_results UNION ALL SELECT epoch FROM abstentions)',
        )
        .get() as {
        epoch: number | null
      }
      return row.epoch === null ? undefined : BigInt(row.epoch)
    },
    /**
     * An epoch's result without its cumulative amounts (which can be large): the roots it signed
     * and the batches it judged; undefined when it has none.
     */
    judgedOn(epoch: bigint): { readingsRoot: Hex; receiptsRoot: Hex; batchHashes: Hex[] } | undefined {
      const row = selectJudgedOn.get(epoch)
      if (!row) return undefined
      const report = JSON.parse(row.report) as { readingsRoot: Hex; receiptsRoot: Hex }
      return {
        readingsRoot: report.readingsRoot,
        receiptsRoot: report.receiptsRoot,
        batchHashes: JSON.parse(row.batch_hashes) as Hex[],
      }
    },
    /**
     * Whether one of `epochs` accepted a reading of `device` (lower-case) timed in [from, to):
     * one lookup on the (device, time) index.
     */
    acceptedBetween(device: string, from: bigint, to: bigint, epochs: readonly bigint[]): boolean {
      return selectAcceptedBetween.get(device, from, to, JSON.stringify(epochs.map(Number))) !== undefined
    },
    /** The device (lower-case) of the reading with `digest` that `epoch` accepted, if any. */
    acceptedDevice(epoch: bigint, digest: Hex): string | undefined {
      return (selectAcceptedDevice.get(epoch, digest.toLowerCase()) as { device: string } | undefined)?.device
    },
    verdicts(epoch: bigint): StoredVerdict[] {
      return (
        db
          .prepare(
            // seq is a decimal string (uint64): by length, then text, is by number
            'SELECT device, seq, status, reason FROM verdicts WHERE epoch = ? ORDER BY device, length(seq), seq',
          )
          .all(epoch) as {
          device: string
          seq: string
          status: 'accepted' | 'rejected'
          reason: string | null
        }[]
      ).map((v) => ({ ...v, seq: BigInt(v.seq) }))
    },
    close(): void {
      db.close()
    },
  }
}
export type ValidatorStore = ReturnType<typeof createValidatorStore>
