/**
 * What the chain says happened, read from its events (not from any indexer of the network): each
 * settled epoch (EpochManager `ReportAccepted`) and each slashing (`EquivocationProven`,
 * ValidatorSet `ValidatorSlashed`), and whether each validator is still active.
 */
import type { Address, Hex } from 'viem'
import type { ChainClients } from '../../src/chain/createChainClients.ts'
import type { Deployment } from '../../src/chain/deployment.ts'
import { epochManagerAbi, validatorSetAbi } from '../../src/chain/generated/contracts.ts'

export type Settlement = {
  epoch: bigint
  readingsRoot: Hex
  rewardsRoot: Hex
  accepted: number
  signers: readonly Address[]
  /** Unix seconds of the block that settled it. */
  timestamp: bigint
}

export type ReadSettlementsReturnType = {
  settled: Map<bigint, Settlement>
  slashed: { validator: Address; epoch: bigint | undefined; event: string }[]
  inactive: Address[]
}

/** Reads every settlement and slashing since the deployment, and the validators still active. */
export async function readSettlements(
  publicClient: ChainClients['publicClient'],
  deployment: Deployment,
  validators: readonly Address[],
): Promise<ReadSettlementsReturnType> {
  const fromBlock = deployment.startBlock
  const accepted = await publicClient.getContractEvents({
    address: deployment.contracts.epochManager,
    abi: epochManagerAbi,
    eventName: 'ReportAccepted',
    fromBlock,
  })
  const times = new Map<bigint, bigint>()
  const settled = new Map<bigint, Settlement>()
  for (const log of accepted) {
    const { epoch, readingsRoot, rewardsRoot, accepted: count, signers } = log.args
    if (epoch === undefined || readingsRoot === undefined || rewardsRoot === undefined) continue
    let timestamp = times.get(log.blockNumber)
    if (timestamp === undefined) {
      timestamp = (await publicClient.getBlock({ blockNumber: log.blockNumber })).timestamp
      times.set(log.blockNumber, timestamp)
    }
    settled.set(epoch, {
      epoch,
      readingsRoot,
      rewardsRoot,
      accepted: Number(count ?? 0),
      signers: signers ?? [],
      timestamp,
    })
  }
  const proven = await publicClient.getContractEvents({
    address: deployment.contracts.epochManager,
    abi: epochManagerAbi,
    eventName: 'EquivocationProven',
    fromBlock,
  })
  const slashings = await publicClient.getContractEvents({
    address: deployment.contracts.validatorSet,
    abi: validatorSetAbi,
    eventName: 'ValidatorSlashed',
    fromBlock,
  })
  const slashed = [
    ...proven.map((l) => ({
      validator: l.args.validator as Address,
      epoch: l.args.epoch,
      event: 'EquivocationProven',
    })),
    ...slashings.map((l) => ({
      validator: l.args.validator as Address,
      epoch: undefined,
      event: 'ValidatorSlashed',
    })),
  ]
  const inactive: Address[] = []
  for (const validator of validators) {
    const active = await publicClient.readContract({
      address: deployment.contracts.validatorSet,
      abi: validatorSetAbi,
      functionName: 'isActive',
      args: [validator],
    })
    if (!active) inactive.push(validator)
  }
  return { settled, slashed, inactive }
}

/** Only the count of settled epochs, cheaply, for the progress line. */
export async function settledEpochCount(
  publicClient: ChainClients['publicClient'],
  deployment: Deployment,
): Promise<number> {
  const logs = await publicClient.getContractEvents({
    address: deployment.contracts.epochManager,
    abi: epochManagerAbi,
    eventName: 'ReportAccepted',
    fromBlock: deployment.startBlock,
  })
  return logs.length
}
