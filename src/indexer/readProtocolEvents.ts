import {
  type Address,
  type Chain,
  decodeEventLog,
  type Hex,
  type Log,
  type PublicClient,
  type Transport,
} from 'viem'
import type { Deployment } from '../chain/deployment.ts'
import {
  dataMarketAbi,
  deviceRegistryAbi,
  epochManagerAbi,
  rewardDistributorAbi,
  validatorSetAbi,
} from '../chain/generated/contracts.ts'
import { DepinError } from '../errors.ts'

/** Where an event sits on the chain; (block, logIndex) orders events totally. */
export type EventPosition = { block: bigint; logIndex: number; blockTimestamp: bigint; txHash: Hex }

/** The protocol events the indexer follows, decoded from the contracts' logs. */
export type ProtocolEvent = EventPosition &
  (
    | {
        type: 'deviceRegistered'
        device: Address
        owner: Address
        deviceClass: number
        h3Cell: bigint
        maker: Address
      }
    | { type: 'deviceTransferred'; device: Address; from: Address; to: Address }
    | { type: 'deviceRelocated'; device: Address; fromCell: bigint; toCell: bigint }
    | { type: 'deviceRetired'; device: Address; owner: Address }
    | { type: 'gatewayAdded'; gateway: Address; url: string }
    | { type: 'gatewayUrlChanged'; gateway: Address; url: string }
    | { type: 'gatewayRemoved'; gateway: Address }
    | { type: 'validatorJoined'; validator: Address; bond: bigint }
    | { type: 'validatorLeft'; validator: Address; unbondingEnds: bigint }
    | { type: 'validatorWithdrew'; validator: Address; bond: bigint }
    | { type: 'validatorSlashed'; validator: Address; prover: Address; amount: bigint; proverReward: bigint }
    | { type: 'validatorEndpointSet'; validator: Address; url: string }
    | {
        type: 'reportAccepted'
        epoch: bigint
        readingsRoot: Hex
        rewardsRoot: Hex
        receiptsRoot: Hex
        total: bigint
        accepted: number
        signers: readonly Address[]
        submitter: Address
      }
    | { type: 'equivocationProven'; validator: Address; epoch: bigint; prover: Address; slashed: bigint }
    | { type: 'epochFunded'; epoch: bigint; rewardsRoot: Hex; minted: bigint; fromFees: bigint }
    | { type: 'claimed'; account: Address; amount: bigint; cumulativeAmount: bigint; submitter: Address }
    | { type: 'providerAdded'; provider: Address; url: string }
    | { type: 'providerUrlChanged'; provider: Address; url: string }
    | { type: 'providerRemoved'; provider: Address }
    | {
        type: 'redeemed'
        consumer: Address
        provider: Address
        amount: bigint
        cumulativeAmount: bigint
        served: Hex
        servedCount: bigint
      }
  )

/** A block's identity as the indexer records it. */
export type BlockStamp = { number: bigint; hash: Hex; timestamp: bigint }

export type ReadProtocolEventsParameters = {
  publicClient: PublicClient<Transport, Chain>
  deployment: Deployment
  fromBlock: bigint
  toBlock: bigint
  /** Blocks already fetched (the range's last block, the head); filled with the blocks holding events. */
  blocks: Map<bigint, BlockStamp>
}

/**
 * Reads the protocol events of blocks `fromBlock..toBlock`, in chain order, each with its block's
 * timestamp (every block holding events is fetched once). Every log of the five contracts must
 * decode with the contract's ABI, and its block hash must match the block fetched at that height:
 * anything else means the chain changed under the indexer, and it stops rather than guess.
 */
export async function readProtocolEvents({
  publicClient,
  deployment,
  fromBlock,
  toBlock,
  blocks,
}: ReadProtocolEventsParameters): Promise<ProtocolEvent[]> {
  const { contracts } = deployment
  const logs = await publicClient.getLogs({
    address: [
      contracts.deviceRegistry,
      contracts.validatorSet,
      contracts.epochManager,
      contracts.rewardDistributor,
      contracts.dataMarket,
    ],
    fromBlock,
    toBlock,
  })
  const ordered = [...logs].sort((a, b) =>
    a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
  )
  const events: ProtocolEvent[] = []
  for (const log of ordered) {
    let block = blocks.get(log.blockNumber)
    if (!block) {
      const fetched = await publicClient.getBlock({ blockNumber: log.blockNumber })
      block = { number: fetched.number, hash: fetched.hash, timestamp: fetched.timestamp }
      blocks.set(block.number, block)
    }
    if (block.hash !== log.blockHash) {
      throw new DepinError(
        'INDEXER_REORG',
        `block ${log.blockNumber} changed while indexing (log in ${log.blockHash}, block is ${block.hash}); the chain reorganized: nothing of the range was stored, it is read again`,
        {
          details: { block: String(log.blockNumber), logBlockHash: log.blockHash, blockHash: block.hash },
          retryable: true,
        },
      )
    }
    const position: EventPosition = {
      block: log.blockNumber,
      logIndex: log.logIndex,
      blockTimestamp: block.timestamp,
      txHash: log.transactionHash,
    }
    const event = decodeProtocolLog(deployment, log, position)
    if (event) events.push(event)
  }
  return events
}

type MinedLog = Log<bigint, number, false>

/** Decodes a log of the protocol's contracts; undefined for events the indexer does not follow. */
function decodeProtocolLog(
  deployment: Deployment,
  log: MinedLog,
  at: EventPosition,
): ProtocolEvent | undefined {
  const { contracts } = deployment
  const address = log.address.toLowerCase()
  const topics = log.topics
  if (topics.length === 0) throw undecodable(log, 'an anonymous log')
  const raw = { data: log.data, topics: topics as [Hex, ...Hex[]], strict: true } as const
  try {
    if (address === contracts.deviceRegistry.toLowerCase()) {
      const e = decodeEventLog({ abi: deviceRegistryAbi, ...raw })
      switch (e.eventName) {
        case 'DeviceRegistered':
          return { ...at, type: 'deviceRegistered', ...e.args }
        case 'DeviceTransferred':
          return { ...at, type: 'deviceTransferred', ...e.args }
        case 'DeviceRelocated':
          return { ...at, type: 'deviceRelocated', ...e.args }
        case 'DeviceRetired':
          return { ...at, type: 'deviceRetired', ...e.args }
        case 'GatewayAdded':
          return { ...at, type: 'gatewayAdded', ...e.args }
        case 'GatewayUrlChanged':
          return { ...at, type: 'gatewayUrlChanged', ...e.args }
        case 'GatewayRemoved':
          return { ...at, type: 'gatewayRemoved', ...e.args }
        default:
          return undefined
      }
    }
    if (address === contracts.validatorSet.toLowerCase()) {
      const e = decodeEventLog({ abi: validatorSetAbi, ...raw })
      switch (e.eventName) {
        case 'ValidatorJoined':
          return { ...at, type: 'validatorJoined', ...e.args }
        case 'ValidatorLeft':
          return { ...at, type: 'validatorLeft', ...e.args }
        case 'ValidatorWithdrew':
          return { ...at, type: 'validatorWithdrew', ...e.args }
        case 'ValidatorSlashed':
          return { ...at, type: 'validatorSlashed', ...e.args }
        case 'ValidatorEndpointSet':
          return { ...at, type: 'validatorEndpointSet', ...e.args }
        default:
          return undefined
      }
    }
    if (address === contracts.epochManager.toLowerCase()) {
      const e = decodeEventLog({ abi: epochManagerAbi, ...raw })
      switch (e.eventName) {
        case 'ReportAccepted':
          return { ...at, type: 'reportAccepted', ...e.args }
        case 'EquivocationProven':
          return { ...at, type: 'equivocationProven', ...e.args }
        default:
          return undefined
      }
    }
    if (address === contracts.rewardDistributor.toLowerCase()) {
      const e = decodeEventLog({ abi: rewardDistributorAbi, ...raw })
      switch (e.eventName) {
        case 'EpochFunded':
          return { ...at, type: 'epochFunded', ...e.args }
        case 'Claimed':
          return { ...at, type: 'claimed', ...e.args }
        default:
          return undefined
      }
    }
    if (address === contracts.dataMarket.toLowerCase()) {
      const e = decodeEventLog({ abi: dataMarketAbi, ...raw })
      switch (e.eventName) {
        case 'ProviderAdded':
          return { ...at, type: 'providerAdded', ...e.args }
        case 'ProviderUrlChanged':
          return { ...at, type: 'providerUrlChanged', ...e.args }
        case 'ProviderRemoved':
          return { ...at, type: 'providerRemoved', ...e.args }
        case 'Redeemed':
          return { ...at, type: 'redeemed', ...e.args }
        default:
          return undefined
      }
    }
  } catch (cause) {
    throw undecodable(log, 'a log that does not decode with its contract ABI', cause)
  }
  throw undecodable(log, 'a log from an address outside the deployment')
}

function undecodable(log: MinedLog, what: string, cause?: unknown): DepinError {
  return new DepinError(
    'INDEXER_UNDECODABLE_LOG',
    `${what} at block ${log.blockNumber}, log ${log.logIndex}: the deployment does not match the chain`,
    {
      details: {
        block: String(log.blockNumber),
        logIndex: log.logIndex,
        address: log.address,
        topics: log.topics,
      },
      ...(cause === undefined ? {} : { cause }),
    },
  )
}
