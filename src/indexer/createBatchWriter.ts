import type { Address } from 'viem'
import { DepinError } from '../errors.ts'
import type { IndexerCursor, IndexerDatabase } from './openIndexerDatabase.ts'
import type { ProtocolEvent } from './readProtocolEvents.ts'
import { createUndoLog, DEFAULT_FINALITY } from './rollBack.ts'

export type Batch = {
  /** The range's events in chain order. */
  events: readonly ProtocolEvent[]
  /** The range's last block: the new cursor. */
  cursor: IndexerCursor
}

type DeviceState = {
  owner: Address
  class: bigint
  cell: bigint
  status: 'active' | 'retired'
  registered_at: bigint
}

/**
 * Returns a writer that applies a range's events and moves the cursor in ONE SQLite transaction,
 * so a crash leaves the database at the previous cursor or at the new one, never in between.
 * Events must follow the stored state (a transfer names the device's current owner, …); when
 * they do not, events were missed and the writer throws (INDEXER_INCONSISTENT) instead of
 * storing a state the chain never had.
 */
export function createBatchWriter(
  db: IndexerDatabase,
  options: {
    /** Blocks below the cursor whose state a rollback can still restore (block hashes and undo rows kept). */
    finality?: bigint
  } = {},
): (batch: Batch) => void {
  const finality = options.finality ?? DEFAULT_FINALITY
  const undo = createUndoLog(db)
  const insertBlockHash = db.prepare(
    'INSERT OR REPLACE INTO block_hashes (block, hash, timestamp) VALUES (@block, @hash, @timestamp)',
  )
  const pruneBlockHashes = db.prepare('DELETE FROM block_hashes WHERE block < ?')
  const deviceState = db.prepare<[string], DeviceState>(
    'SELECT owner, class, cell, status, registered_at FROM devices WHERE device = ?',
  )
  const insertDevice = db.prepare(
    `INSERT INTO devices (device, owner, class, cell, status, registered_at, maker, updated_block)
     VALUES (@device, @owner, @class, @cell, 'active', @registeredAt, @maker, @block)`,
  )
  const updateDevice = db.prepare(
    `UPDATE devices SET owner = @owner, cell = @cell, status = @status, updated_block = @block WHERE device = @device`,
  )
  const insertDeviceEvent = db.prepare(
    `INSERT INTO device_events (block, log_index, block_timestamp, tx_hash, device, kind, owner, class, cell, registered_at)
     VALUES (@block, @logIndex, @blockTimestamp, @txHash, @device, @kind, @owner, @class, @cell, @registeredAt)`,
  )
  const gatewayListed = db.prepare<[string], { kind: string }>(
    'SELECT kind FROM gateway_events WHERE gateway = ? ORDER BY block DESC, log_index DESC LIMIT 1',
  )
  const insertGatewayEvent = db.prepare(
    `INSERT INTO gateway_events (block, log_index, block_timestamp, tx_hash, gateway, kind, url)
     VALUES (@block, @logIndex, @blockTimestamp, @txHash, @gateway, @kind, @url)`,
  )
  const providerListed = db.prepare<[string], { kind: string }>(
    'SELECT kind FROM provider_events WHERE provider = ? ORDER BY block DESC, log_index DESC LIMIT 1',
  )
  const insertProviderEvent = db.prepare(
    `INSERT INTO provider_events (block, log_index, block_timestamp, tx_hash, provider, kind, url)
     VALUES (@block, @logIndex, @blockTimestamp, @txHash, @provider, @kind, @url)`,
  )
  const insertRedemption = db.prepare(
    `INSERT INTO redemptions (block, log_index, block_timestamp, tx_hash, consumer, provider, amount, cumulative_amount, served, served_count)
     VALUES (@block, @logIndex, @blockTimestamp, @txHash, @consumer, @provider, @amount, @cumulativeAmount, @served, @servedCount)`,
  )
  const insertValidatorEvent = db.prepare(
    `INSERT INTO validator_events (block, log_index, block_timestamp, tx_hash, validator, kind)
     VALUES (@block, @logIndex, @blockTimestamp, @txHash, @validator, @kind)`,
  )
  const validatorEvent = (event: ProtocolEvent & { validator: Address }, kind: string) =>
    insertValidatorEvent.run({
      block: event.block,
      logIndex: event.logIndex,
      blockTimestamp: event.blockTimestamp,
      txHash: event.txHash,
      validator: event.validator,
      kind,
    })
  const setEndpoint = db.prepare(
    `INSERT INTO validator_endpoints (validator, url, updated_block) VALUES (@validator, @url, @block)
     ON CONFLICT (validator) DO UPDATE SET url = excluded.url, updated_block = excluded.updated_block`,
  )
  const joinValidator = db.prepare(
    `INSERT INTO validators (validator, status, bond, joined_at, updated_block)
     VALUES (@validator, 'active', @bond, @joinedAt, @block)
     ON CONFLICT (validator) DO UPDATE SET
       status = 'active', bond = excluded.bond, joined_at = excluded.joined_at, updated_block = excluded.updated_block`,
  )
  const setValidatorStatus = db.prepare(
    'UPDATE validators SET status = @status, updated_block = @block WHERE validator = @validator',
  )
  const setValidatorStatusAndBond = db.prepare(
    'UPDATE validators SET status = @status, bond = @bond, updated_block = @block WHERE validator = @validator',
  )
  const insertEpoch = db.prepare(
    `INSERT INTO epochs (epoch, readings_root, rewards_root, receipts_root, total, accepted, signers, submitter, tx_hash, block, timestamp)
     VALUES (@epoch, @readingsRoot, @rewardsRoot, @receiptsRoot, @total, @accepted, @signers, @submitter, @txHash, @block, @timestamp)`,
  )
  const insertFunding = db.prepare(
    `INSERT INTO epoch_funding (epoch, rewards_root, minted, from_fees, block)
     VALUES (@epoch, @rewardsRoot, @minted, @fromFees, @block)`,
  )
  const insertEquivocation = db.prepare(
    `INSERT INTO equivocations (block, log_index, validator, epoch, prover, slashed, tx_hash)
     VALUES (@block, @logIndex, @validator, @epoch, @prover, @slashed, @txHash)`,
  )
  const insertClaim = db.prepare(
    `INSERT INTO claims (block, log_index, account, amount, cumulative_amount, submitter, tx_hash)
     VALUES (@block, @logIndex, @account, @amount, @cumulativeAmount, @submitter, @txHash)`,
  )
  const writeCursor = db.prepare(
    `INSERT INTO cursor (id, block, hash, timestamp) VALUES (1, @block, @hash, @timestamp)
     ON CONFLICT (id) DO UPDATE SET block = excluded.block, hash = excluded.hash, timestamp = excluded.timestamp`,
  )

  const existingDevice = (event: ProtocolEvent & { device: Address }): DeviceState => {
    const state = deviceState.get(event.device)
    if (!state) throw inconsistent(event, `device ${event.device} was never registered`)
    if (state.status === 'retired') throw inconsistent(event, `device ${event.device} is retired`)
    return state
  }

  const changeValidator = (
    event: ProtocolEvent & { validator: Address },
    status: 'unbonding' | 'withdrawn' | 'slashed',
  ) => {
    // the bond stays slashable while unbonding; withdrawn and slashed validators have none left
    const bond = status === 'unbonding' ? undefined : '0'
    undo.remember('validators', event.validator, event.block)
    const result =
      bond === undefined
        ? setValidatorStatus.run({ validator: event.validator, status, block: event.block })
        : setValidatorStatusAndBond.run({ validator: event.validator, status, bond, block: event.block })
    if (result.changes !== 1) throw inconsistent(event, `validator ${event.validator} never joined`)
    validatorEvent(event, { unbonding: 'left', withdrawn: 'withdrew', slashed: 'slashed' }[status])
  }

  const apply = (event: ProtocolEvent): void => {
    const position = { block: event.block, logIndex: event.logIndex, txHash: event.txHash }
    switch (event.type) {
      case 'deviceRegistered': {
        if (deviceState.get(event.device))
          throw inconsistent(event, `device ${event.device} registered twice`)
        const state = {
          device: event.device,
          owner: event.owner,
          class: event.deviceClass,
          cell: event.h3Cell,
          registeredAt: event.blockTimestamp,
        }
        undo.remember('devices', event.device, event.block)
        insertDevice.run({ ...state, maker: event.maker, block: event.block })
        insertDeviceEvent.run({
          ...position,
          ...state,
          blockTimestamp: event.blockTimestamp,
          kind: 'registered',
        })
        return
      }
      case 'deviceTransferred':
      case 'deviceRelocated':
      case 'deviceRetired': {
        const before = existingDevice(event)
        const after = { ...before, status: 'active' as 'active' | 'retired' }
        if (event.type === 'deviceTransferred') {
          if (before.owner.toLowerCase() !== event.from.toLowerCase())
            throw inconsistent(event, `device ${event.device} is not owned by ${event.from}`)
          after.owner = event.to
        } else if (event.type === 'deviceRelocated') {
          if (before.cell !== event.fromCell)
            throw inconsistent(event, `device ${event.device} is not in cell ${event.fromCell}`)
          after.cell = event.toCell
        } else {
          after.status = 'retired'
        }
        const kind = {
          deviceTransferred: 'transferred',
          deviceRelocated: 'relocated',
          deviceRetired: 'retired',
        }[event.type]
        undo.remember('devices', event.device, event.block)
        updateDevice.run({
          device: event.device,
          owner: after.owner,
          cell: after.cell,
          status: after.status,
          block: event.block,
        })
        insertDeviceEvent.run({
          ...position,
          blockTimestamp: event.blockTimestamp,
          device: event.device,
          kind,
          owner: after.owner,
          class: after.class,
          cell: after.cell,
          registeredAt: after.registered_at,
        })
        return
      }
      case 'gatewayAdded':
      case 'gatewayUrlChanged':
      case 'gatewayRemoved': {
        const listed = (gatewayListed.get(event.gateway)?.kind ?? 'removed') !== 'removed'
        if (listed === (event.type === 'gatewayAdded'))
          throw inconsistent(event, `gateway ${event.gateway} is ${listed ? 'already' : 'not'} listed`)
        const kind = { gatewayAdded: 'added', gatewayUrlChanged: 'url_changed', gatewayRemoved: 'removed' }[
          event.type
        ]
        insertGatewayEvent.run({
          ...position,
          blockTimestamp: event.blockTimestamp,
          gateway: event.gateway,
          kind,
          url: event.type === 'gatewayRemoved' ? '' : event.url,
        })
        return
      }
      case 'providerAdded':
      case 'providerUrlChanged':
      case 'providerRemoved': {
        const listed = (providerListed.get(event.provider)?.kind ?? 'removed') !== 'removed'
        if (listed === (event.type === 'providerAdded'))
          throw inconsistent(event, `provider ${event.provider} is ${listed ? 'already' : 'not'} listed`)
        const kind = {
          providerAdded: 'added',
          providerUrlChanged: 'url_changed',
          providerRemoved: 'removed',
        }[event.type]
        insertProviderEvent.run({
          ...position,
          blockTimestamp: event.blockTimestamp,
          provider: event.provider,
          kind,
          url: event.type === 'providerRemoved' ? '' : event.url,
        })
        return
      }
      case 'redeemed':
        insertRedemption.run({
          ...position,
          blockTimestamp: event.blockTimestamp,
          consumer: event.consumer,
          provider: event.provider,
          amount: event.amount.toString(),
          cumulativeAmount: event.cumulativeAmount.toString(),
          served: event.served,
          servedCount: event.servedCount,
        })
        return
      case 'validatorJoined':
        undo.remember('validators', event.validator, event.block)
        joinValidator.run({
          validator: event.validator,
          bond: event.bond.toString(),
          joinedAt: event.blockTimestamp,
          block: event.block,
        })
        validatorEvent(event, 'joined')
        return
      case 'validatorEndpointSet':
        undo.remember('validator_endpoints', event.validator, event.block)
        setEndpoint.run({ validator: event.validator, url: event.url, block: event.block })
        return
      case 'validatorLeft':
        changeValidator(event, 'unbonding')
        return
      case 'validatorWithdrew':
        changeValidator(event, 'withdrawn')
        return
      case 'validatorSlashed':
        changeValidator(event, 'slashed')
        return
      case 'reportAccepted':
        insertEpoch.run({
          epoch: event.epoch,
          readingsRoot: event.readingsRoot,
          rewardsRoot: event.rewardsRoot,
          receiptsRoot: event.receiptsRoot,
          total: event.total.toString(),
          accepted: event.accepted,
          signers: JSON.stringify(event.signers),
          submitter: event.submitter,
          txHash: event.txHash,
          block: event.block,
          timestamp: event.blockTimestamp,
        })
        return
      case 'epochFunded':
        insertFunding.run({
          epoch: event.epoch,
          rewardsRoot: event.rewardsRoot,
          minted: event.minted.toString(),
          fromFees: event.fromFees.toString(),
          block: event.block,
        })
        return
      case 'equivocationProven':
        insertEquivocation.run({
          ...position,
          validator: event.validator,
          epoch: event.epoch,
          prover: event.prover,
          slashed: event.slashed.toString(),
        })
        return
      case 'claimed':
        insertClaim.run({
          ...position,
          account: event.account,
          amount: event.amount.toString(),
          cumulativeAmount: event.cumulativeAmount.toString(),
          submitter: event.submitter,
        })
        return
    }
  }

  return db.transaction((batch: Batch) => {
    for (const event of batch.events) apply(event)
    const { block, hash, timestamp } = batch.cursor
    writeCursor.run({ block, hash, timestamp })
    // what a rollback needs, kept for the finality window only
    insertBlockHash.run({ block, hash, timestamp })
    pruneBlockHashes.run(block - finality)
    undo.prune(block - finality)
  })
}

function inconsistent(event: ProtocolEvent, reason: string): DepinError {
  return new DepinError(
    'INDEXER_INCONSISTENT',
    `${event.type} at block ${event.block}, log ${event.logIndex} does not follow the stored state: ${reason}`,
    { details: { block: String(event.block), logIndex: event.logIndex, txHash: event.txHash } },
  )
}
