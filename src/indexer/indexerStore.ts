import { type Address, getAddress, type Hex } from 'viem'
import { DepinError } from '../errors.ts'
import { type IndexerDatabase, openIndexerDatabase, readCursor } from './openIndexerDatabase.ts'

export type DeviceRecord = {
  device: Address
  owner: Address
  deviceClass: number
  h3Cell: bigint
  status: 'active' | 'retired'
  /** Timestamp of the block that registered the device. */
  registeredAt: bigint
}

/** A gateway on the registry's list, with the URL of its batch API. */
export type GatewayRecord = { gateway: Address; url: string }

/** A data-market provider on the DataMarket's list, with the URL where it publishes what it served. */
export type ProviderRecord = { provider: Address; url: string }

/** A voucher redeemed on the DataMarket (its Redeemed event). */
export type RedemptionRecord = {
  block: bigint
  logIndex: number
  blockTimestamp: bigint
  txHash: Hex
  consumer: Address
  provider: Address
  /** What this redemption moved to the fee pool. */
  amount: bigint
  cumulativeAmount: bigint
  /** The voucher's commitment to everything the provider served the consumer, and its count. */
  served: Hex
  servedCount: bigint
}

export type ValidatorRecord = {
  validator: Address
  status: 'active' | 'unbonding' | 'withdrawn' | 'slashed'
  /** Tokens bonded now: unchanged while unbonding, 0 once withdrawn or slashed. */
  bond: bigint
  /** Timestamp of the block of the latest join (a withdrawn validator may join again). */
  joinedAt: bigint
}

export type EpochRecord = {
  epoch: bigint
  readingsRoot: Hex
  rewardsRoot: Hex
  /** Root of the epoch's device receipts (signed with the report; in ReportAccepted, not in storage). */
  receiptsRoot: Hex
  total: bigint
  accepted: number
  /** The validators whose signatures the EpochManager counted, ascending. */
  signers: Address[]
  submitter: Address
  txHash: Hex
  block: bigint
  timestamp: bigint
  /** Of `total`: tokens minted from the epoch's emission, and taken from the fee pool. */
  minted: bigint
  fromFees: bigint
}

export type ClaimRecord = {
  account: Address
  /** Tokens paid by this claim. */
  amount: bigint
  cumulativeAmount: bigint
  txHash: Hex
  block: bigint
}

export type EquivocationRecord = {
  validator: Address
  epoch: bigint
  prover: Address
  /** The bond taken (0 when the validator had none left). */
  slashed: bigint
  txHash: Hex
  block: bigint
}

/** The indexer's read API: each method one synchronous SQLite query. */
export type IndexerStore = {
  /** The last block fully processed, with its timestamp; undefined before the first sync. */
  lastProcessed(): { block: bigint; timestamp: bigint } | undefined
  /** The latest state of a device. */
  getDevice(device: Address): DeviceRecord | undefined
  /**
   * The registry as of time `before`: the state after every event of blocks with timestamp <
   * `before`, sorted by device address ascending. Deterministic, so every validator gets the
   * same answer for one chain. Throws INDEXER_BEHIND until a block with timestamp >= `before`
   * has been processed (await `waitForTime(before)` first): earlier, later blocks with
   * timestamps < `before` could still come and the answer would not be final.
   */
  devicesAt(before: bigint): DeviceRecord[]
  /**
   * The gateway list as of time `before` (blocks with timestamp < `before`), sorted by gateway
   * address ascending; final, like `devicesAt`, only once a block at or after `before` was processed.
   */
  gatewaysAt(before: bigint): GatewayRecord[]
  /** The gateway list after every block processed so far, sorted by gateway address. */
  gateways(): GatewayRecord[]
  /** Devices ever registered (active and retired). */
  deviceCount(): number
  /** Devices sorted by address ascending; all of them unless `limit` is given. */
  listDevices(options?: { owner?: Address; limit?: number; offset?: number }): DeviceRecord[]
  /** Every validator that ever joined, sorted by address ascending. */
  validators(): ValidatorRecord[]
  /**
   * The active validators as of time `before` (blocks with timestamp < `before`), addresses
   * lower-case, ascending; final, like `devicesAt`, only once a block at or after `before` was
   * processed (INDEXER_BEHIND until then). An epoch's validators are those as of its end.
   */
  activeValidatorsAt(before: bigint): Address[]
  /** The endpoint each active validator advertised (non-empty ones), sorted by validator address. */
  validatorEndpoints(): { validator: Address; url: string }[]
  /** Accepted epochs, newest first; all of them unless `limit` is given. */
  epochs(limit?: number): EpochRecord[]
  getEpoch(epoch: bigint): EpochRecord | undefined
  /** Claims paid, in chain order; only `account`'s when given. */
  claims(account?: Address): ClaimRecord[]
  /** Proven equivocations, in chain order. */
  equivocations(): EquivocationRecord[]
  /**
   * The DataMarket's provider list as of time `before`, sorted by address; final, like
   * `devicesAt`, only once a block at or after `before` was processed.
   */
  providersAt(before: bigint): ProviderRecord[]
  /**
   * Redemptions in blocks with timestamp in [from, to), in chain order; final once a block at or
   * after `to` was processed (INDEXER_BEHIND until then).
   */
  redemptionsBetween(from: bigint, to: bigint): RedemptionRecord[]
  /** The redemption of the same consumer and provider before `at` (chain order), if any. */
  redemptionBefore(
    at: Pick<RedemptionRecord, 'consumer' | 'provider' | 'block' | 'logIndex'>,
  ): RedemptionRecord | undefined
  /** Every redemption of a consumer's vouchers (or all), in chain order. */
  redemptions(consumer?: Address): RedemptionRecord[]
  close(): void
}

type DeviceRow = {
  device: Address
  owner: Address
  class: bigint
  cell: bigint
  status: string
  registered_at: bigint
}
type ValidatorRow = { validator: Address; status: string; bond: string; joined_at: bigint }
type EpochRow = {
  epoch: bigint
  readings_root: Hex
  rewards_root: Hex
  receipts_root: Hex
  total: string
  accepted: bigint
  signers: string
  submitter: Address
  tx_hash: Hex
  block: bigint
  timestamp: bigint
  minted: string | null
  from_fees: string | null
}
type ClaimRow = { account: Address; amount: string; cumulative_amount: string; tx_hash: Hex; block: bigint }
type EquivocationRow = {
  validator: Address
  epoch: bigint
  prover: Address
  slashed: string
  tx_hash: Hex
  block: bigint
}

const epochColumns = `e.epoch, e.readings_root, e.rewards_root, e.receipts_root, e.total, e.accepted, e.signers, e.submitter,
  e.tx_hash, e.block, e.timestamp, f.minted, f.from_fees
  FROM epochs e LEFT JOIN epoch_funding f ON f.epoch = e.epoch`

type RedemptionRow = {
  block: bigint
  log_index: bigint
  block_timestamp: bigint
  tx_hash: Hex
  consumer: Address
  provider: Address
  amount: string
  cumulative_amount: string
  served: Hex
  served_count: bigint
}
const toRedemption = (row: RedemptionRow): RedemptionRecord => ({
  block: row.block,
  logIndex: Number(row.log_index),
  blockTimestamp: row.block_timestamp,
  txHash: row.tx_hash,
  consumer: getAddress(row.consumer),
  provider: getAddress(row.provider),
  amount: BigInt(row.amount),
  cumulativeAmount: BigInt(row.cumulative_amount),
  served: row.served,
  servedCount: row.served_count,
})
const redemptionColumns =
  'block, log_index, block_timestamp, tx_hash, consumer, provider, amount, cumulative_amount, served, served_count'

/** The read API over an open indexer database; `close()` closes the database. */
export function createIndexerStore(db: IndexerDatabase): IndexerStore {
  const providersAt = db.prepare<[bigint], ProviderRecord>(
    `SELECT provider, url FROM (
       SELECT *, ROW_NUMBER() OVER (PARTITION BY provider ORDER BY block DESC, log_index DESC) AS latest
       FROM provider_events WHERE block_timestamp < ?
     )
     WHERE latest = 1 AND kind != 'removed' ORDER BY provider COLLATE NOCASE`,
  )
  const redemptionsBetween = db.prepare<[bigint, bigint], RedemptionRow>(
    `SELECT ${redemptionColumns} FROM redemptions WHERE block_timestamp >= ? AND block_timestamp < ? ORDER BY block, log_index`,
  )
  const redemptionBefore = db.prepare<[string, string, bigint, bigint, number], RedemptionRow>(
    `SELECT ${redemptionColumns} FROM redemptions WHERE consumer = ? AND provider = ?
       AND (block < ? OR (block = ? AND log_index < ?)) ORDER BY block DESC, log_index DESC LIMIT 1`,
  )
  const allRedemptions = db.prepare<[], RedemptionRow>(
    `SELECT ${redemptionColumns} FROM redemptions ORDER BY block, log_index`,
  )
  const redemptionsOf = db.prepare<[string], RedemptionRow>(
    `SELECT ${redemptionColumns} FROM redemptions WHERE consumer = ? ORDER BY block, log_index`,
  )
  const getDevice = db.prepare<[string], DeviceRow>(
    'SELECT device, owner, class, cell, status, registered_at FROM devices WHERE device = ?',
  )
  // the latest event of each device before the time carries the device's state after it
  const devicesAt = db.prepare<[bigint], DeviceRow>(
    `SELECT device, owner, class, cell, CASE kind WHEN 'retired' THEN 'retired' ELSE 'active' END AS status, registered_at
     FROM (
       SELECT *, ROW_NUMBER() OVER (PARTITION BY device ORDER BY block DESC, log_index DESC) AS latest
       FROM device_events WHERE block_timestamp < ?
     )
     WHERE latest = 1 ORDER BY device COLLATE NOCASE`,
  )
  const gatewaysAt = db.prepare<[bigint], GatewayRecord>(
    `SELECT gateway, url FROM (
       SELECT *, ROW_NUMBER() OVER (PARTITION BY gateway ORDER BY block DESC, log_index DESC) AS latest
       FROM gateway_events WHERE block_timestamp < ?
     )
     WHERE latest = 1 AND kind != 'removed' ORDER BY gateway COLLATE NOCASE`,
  )
  const activeValidatorsAt = db.prepare<[bigint], { validator: Address }>(
    `SELECT lower(validator) AS validator FROM (
       SELECT *, ROW_NUMBER() OVER (PARTITION BY lower(validator) ORDER BY block DESC, log_index DESC) AS latest
       FROM validator_events WHERE block_timestamp < ?
     )
     WHERE latest = 1 AND kind = 'joined' ORDER BY lower(validator)`,
  )
  const deviceCount = db.prepare<[], { n: bigint }>('SELECT COUNT(*) AS n FROM devices')
  const listDevices = db.prepare<[number, number], DeviceRow>(
    `SELECT device, owner, class, cell, status, registered_at FROM devices
     ORDER BY device COLLATE NOCASE LIMIT ? OFFSET ?`,
  )
  const listDevicesOf = db.prepare<[string, number, number], DeviceRow>(
    `SELECT device, owner, class, cell, status, registered_at FROM devices WHERE owner = ?
     ORDER BY device COLLATE NOCASE LIMIT ? OFFSET ?`,
  )
  const validators = db.prepare<[], ValidatorRow>(
    'SELECT validator, status, bond, joined_at FROM validators ORDER BY validator COLLATE NOCASE',
  )
  const validatorEndpoints = db.prepare<[], { validator: Address; url: string }>(
    `SELECT e.validator, e.url FROM validator_endpoints e JOIN validators v ON v.validator = e.validator
     WHERE v.status = 'active' AND e.url != '' ORDER BY e.validator COLLATE NOCASE`,
  )
  const epochs = db.prepare<[number], EpochRow>(`SELECT ${epochColumns} ORDER BY e.epoch DESC LIMIT ?`)
  const getEpoch = db.prepare<[bigint], EpochRow>(`SELECT ${epochColumns} WHERE e.epoch = ?`)
  const claims = db.prepare<[], ClaimRow>(
    'SELECT account, amount, cumulative_amount, tx_hash, block FROM claims ORDER BY block, log_index',
  )
  const claimsOf = db.prepare<[string], ClaimRow>(
    `SELECT account, amount, cumulative_amount, tx_hash, block FROM claims WHERE account = ?
     ORDER BY block, log_index`,
  )
  const equivocations = db.prepare<[], EquivocationRow>(
    'SELECT validator, epoch, prover, slashed, tx_hash, block FROM equivocations ORDER BY block, log_index',
  )

  return {
    lastProcessed() {
      const cursor = readCursor(db)
      return cursor && { block: cursor.block, timestamp: cursor.timestamp }
    },
    getDevice(device) {
      const row = getDevice.get(getAddress(device))
      return row && toDevice(row)
    },
    devicesAt(before) {
      requireProcessed(db, before)
      return devicesAt.all(before).map(toDevice)
    },
    gatewaysAt(before) {
      requireProcessed(db, before)
      return gatewaysAt.all(before)
    },
    gateways() {
      return gatewaysAt.all(BigInt(Number.MAX_SAFE_INTEGER))
    },
    activeValidatorsAt(before) {
      requireProcessed(db, before)
      return activeValidatorsAt.all(before).map((row) => row.validator)
    },
    deviceCount() {
      return Number(deviceCount.get()?.n ?? 0n)
    },
    listDevices(options = {}) {
      const limit = options.limit === undefined ? -1 : count('limit', options.limit)
      const offset = options.offset === undefined ? 0 : count('offset', options.offset)
      const rows =
        options.owner === undefined
          ? listDevices.all(limit, offset)
          : listDevicesOf.all(getAddress(options.owner), limit, offset)
      return rows.map(toDevice)
    },
    validators() {
      return validators.all().map((row) => ({
        validator: row.validator,
        status: row.status as ValidatorRecord['status'],
        bond: BigInt(row.bond),
        joinedAt: row.joined_at,
      }))
    },
    validatorEndpoints() {
      return validatorEndpoints.all()
    },
    epochs(limit) {
      return epochs.all(limit === undefined ? -1 : count('limit', limit)).map(toEpoch)
    },
    getEpoch(epoch) {
      const row = getEpoch.get(epoch)
      return row && toEpoch(row)
    },
    providersAt(before) {
      requireProcessed(db, before)
      return providersAt.all(before).map((r) => ({ provider: getAddress(r.provider), url: r.url }))
    },
    redemptionsBetween(from, to) {
      requireProcessed(db, to)
      return redemptionsBetween.all(from, to).map(toRedemption)
    },
    redemptionBefore(at) {
      const row = redemptionBefore.get(at.consumer, at.provider, at.block, at.block, at.logIndex)
      return row && toRedemption(row)
    },
    redemptions(consumer) {
      return (consumer === undefined ? allRedemptions.all() : redemptionsOf.all(consumer)).map(toRedemption)
    },
    claims(account) {
      const rows = account === undefined ? claims.all() : claimsOf.all(getAddress(account))
      return rows.map((row) => ({
        account: row.account,
        amount: BigInt(row.amount),
        cumulativeAmount: BigInt(row.cumulative_amount),
        txHash: row.tx_hash,
        block: row.block,
      }))
    },
    equivocations() {
      return equivocations.all().map((row) => ({
        validator: row.validator,
        epoch: row.epoch,
        prover: row.prover,
        slashed: BigInt(row.slashed),
        txHash: row.tx_hash,
        block: row.block,
      }))
    },
    close() {
      if (db.open) db.close()
    },
  }
}

/**
 * Opens an indexer database for reading, e.g. from another process than the indexer's
 * (SQLite's WAL lets readers run beside the one writer).
 */
export function openIndexerStore(dbPath: string): IndexerStore {
  return createIndexerStore(openIndexerDatabase(dbPath, { readonly: true }))
}

/** Throws INDEXER_BEHIND until a block with timestamp >= `before` has been processed. */
function requireProcessed(db: IndexerDatabase, before: bigint): void {
  const processed = readCursor(db)
  if (!processed || processed.timestamp < before) {
    throw new DepinError(
      'INDEXER_BEHIND',
      `the indexer has not yet processed a block at or after time ${before} (last: ${processed?.timestamp ?? 'none'})`,
      {
        details: { before: String(before), lastTimestamp: processed?.timestamp.toString() },
        retryable: true,
      },
    )
  }
}

function toDevice(row: DeviceRow): DeviceRecord {
  return {
    device: row.device,
    owner: row.owner,
    deviceClass: Number(row.class),
    h3Cell: row.cell,
    status: row.status as DeviceRecord['status'],
    registeredAt: row.registered_at,
  }
}

function toEpoch(row: EpochRow): EpochRecord {
  return {
    epoch: row.epoch,
    readingsRoot: row.readings_root,
    rewardsRoot: row.rewards_root,
    receiptsRoot: row.receipts_root,
    total: BigInt(row.total),
    accepted: Number(row.accepted),
    signers: JSON.parse(row.signers) as Address[],
    submitter: row.submitter,
    txHash: row.tx_hash,
    block: row.block,
    timestamp: row.timestamp,
    // settle() emits EpochFunded before ReportAccepted, in the same transaction
    minted: BigInt(row.minted ?? '0'),
    fromFees: BigInt(row.from_fees ?? '0'),
  }
}

function count(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DepinError('INDEXER_INVALID_QUERY', `${name} must be a non-negative integer, got ${value}`)
  }
  return value
}
