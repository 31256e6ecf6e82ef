/**
 * An epoch's randomness: a value nobody knows before the epoch starts and no single party picks,
 * recomputable by anyone from chain data alone. For epoch e, with start = genesis + e × length:
 *
 *   randomness(e) = keccak256(abi.encode(string "depin.epoch.randomness", uint256 chainId,
 *                     address epochManager, uint64 e, bytes32 previousReportDigest, bytes32 blockHash))
 *
 * - blockHash: the hash of the last block with timestamp < start (block 0 if none is) — produced
 *   just before the epoch starts, and final (modulo a reorg) once any block at or after start exists;
 * - previousReportDigest: the EIP-712 digest of the last report the EpochManager accepted in a
 *   block before start (zero before the first), which a quorum of validators signed.
 *
 * Limits, stated plainly: whoever decides the last block before the start can grind its hash — on
 * a chain with fixed slots only that slot's proposer; on anvil with mixed mining, anyone, by
 * sending transactions just before the start until the value suits them — and the submitter of a
 * report chooses whether it lands before or after the start. What this buys is a value no one
 * knows before the epoch and everyone recomputes; against a grinding adversary, a validators'
 * commit-reveal or threshold signature (or `prevrandao` where the chain has a beacon) is the next
 * step. The connectivity rules limit what grinding buys: only hotspots registered before the
 * epoch's start can be chosen, so a key cannot be ground to fit a known value.
 */
import { type Address, encodeAbiParameters, type Hex, keccak256, type PublicClient, zeroHash } from 'viem'
import { epochManagerAbi } from './generated/contracts.ts'
import { hashEpochReport } from './signEpochReport.ts'
import type { EpochReport } from './typedData.ts'

export const RANDOMNESS_DOMAIN = 'depin.epoch.randomness'

/** A block as the randomness names it. */
export type BlockStamp = { number: bigint; hash: Hex; timestamp: bigint }

/** The report fields of a ReportAccepted event: with the pinned rules hash, its signed digest. */
export type SettledReport = Omit<EpochReport, 'rulesHash'>

export type EpochRandomness = {
  epoch: bigint
  value: Hex
  /** The last block before the epoch's start. */
  block: BlockStamp
  /** The last report settled before the epoch's start, and its digest; null before the first. */
  previousReport: { epoch: bigint; digest: Hex } | null
}

/**
 * The last block with timestamp < `time` (block 0 when none is), by binary search over block
 * numbers; undefined while no block at or after `time` exists yet (one before it might still come).
 * `from`, a block known to be before `time`, only shortens the search.
 */
export async function lastBlockBefore(
  publicClient: Pick<PublicClient, 'getBlock'>,
  time: bigint,
  from = 0n,
): Promise<BlockStamp | undefined> {
  const latest = await publicClient.getBlock({ blockTag: 'latest' })
  if (latest.timestamp < time) return undefined
  const stamp = (block: { number: bigint; hash: Hex; timestamp: bigint }): BlockStamp => ({
    number: block.number,
    hash: block.hash,
    timestamp: block.timestamp,
  })
  let low = from > latest.number ? 0n : from
  if ((await publicClient.getBlock({ blockNumber: low })).timestamp >= time) {
    if (low === 0n) return stamp(await publicClient.getBlock({ blockNumber: 0n }))
    low = 0n
    const genesis = await publicClient.getBlock({ blockNumber: 0n })
    if (genesis.timestamp >= time) return stamp(genesis)
  }
  // invariant: block `low` is before `time`, block `high` is not
  let high = latest.number
  while (high - low > 1n) {
    const middle = (low + high) / 2n
    const block = await publicClient.getBlock({ blockNumber: middle })
    if (block.timestamp < time) low = middle
    else high = middle
  }
  return stamp(await publicClient.getBlock({ blockNumber: low }))
}

/** The randomness value of `epoch` from its two inputs. */
export function randomnessOf(input: {
  chainId: number
  epochManager: Address
  epoch: bigint
  previousReportDigest: Hex | null
  blockHash: Hex
}): Hex {
  return keccak256(
    encodeAbiParameters(
      [
        { type: 'string' },
        { type: 'uint256' },
        { type: 'address' },
        { type: 'uint64' },
        { type: 'bytes32' },
        { type: 'bytes32' },
      ],
      [
        RANDOMNESS_DOMAIN,
        BigInt(input.chainId),
        input.epochManager,
        input.epoch,
        input.previousReportDigest ?? zeroHash,
        input.blockHash,
      ],
    ),
  )
}

export type EpochRandomnessParameters = {
  publicClient: Pick<PublicClient, 'getBlock'>
  deployment: {
    chainId: number
    genesisTime: bigint
    epochLength: bigint
    startBlock: bigint
    contracts: { epochManager: Address }
  }
  /** The rules hash the EpochManager pins (every accepted report carries it). */
  rulesHash: Hex
  epoch: bigint
  /** A block known to be before the epoch's start, to shorten the search (default the start block). */
  fromBlock?: bigint | undefined
  /**
   * The last report settled in a block before `time`, with its epoch: a validator asks its
   * indexer; `reportsFromLogs` reads the chain's logs for anyone else.
   */
  lastReportBefore(time: bigint): Promise<SettledReport | undefined> | SettledReport | undefined
}

/** The randomness of `epoch`, or undefined while the epoch has not started on-chain. */
export async function epochRandomness(
  parameters: EpochRandomnessParameters,
): Promise<EpochRandomness | undefined> {
  const { deployment, epoch } = parameters
  const start = deployment.genesisTime + epoch * deployment.epochLength
  const block = await lastBlockBefore(
    parameters.publicClient,
    start,
    parameters.fromBlock ?? deployment.startBlock,
  )
  if (!block) return undefined
  const previous = await parameters.lastReportBefore(start)
  const previousReport = previous
    ? {
        epoch: previous.epoch,
        digest: hashEpochReport(deployment.chainId, deployment.contracts.epochManager, {
          epoch: previous.epoch,
          rulesHash: parameters.rulesHash,
          readingsRoot: previous.readingsRoot,
          rewardsRoot: previous.rewardsRoot,
          receiptsRoot: previous.receiptsRoot,
          total: previous.total,
          accepted: previous.accepted,
        }),
      }
    : null
  return {
    epoch,
    block,
    previousReport,
    value: randomnessOf({
      chainId: deployment.chainId,
      epochManager: deployment.contracts.epochManager,
      epoch,
      previousReportDigest: previousReport?.digest ?? null,
      blockHash: block.hash,
    }),
  }
}

/**
 * `lastReportBefore` from the chain's logs alone: the newest ReportAccepted event in a block
 * before `time` (blocks from the deployment's start block on).
 */
export function reportsFromLogs(
  publicClient: Pick<PublicClient, 'getContractEvents' | 'getBlock'>,
  deployment: EpochRandomnessParameters['deployment'],
): (time: bigint) => Promise<SettledReport | undefined> {
  return async (time) => {
    const block = await lastBlockBefore(publicClient, time, deployment.startBlock)
    if (!block) return undefined
    const logs = await publicClient.getContractEvents({
      address: deployment.contracts.epochManager,
      abi: epochManagerAbi,
      eventName: 'ReportAccepted',
      fromBlock: deployment.startBlock,
      toBlock: block.number,
    })
    const args = logs.at(-1)?.args
    if (!args) return undefined
    return {
      epoch: args.epoch as bigint,
      readingsRoot: args.readingsRoot as Hex,
      rewardsRoot: args.rewardsRoot as Hex,
      receiptsRoot: args.receiptsRoot as Hex,
      total: args.total as bigint,
      accepted: args.accepted as number,
    }
  }
}
