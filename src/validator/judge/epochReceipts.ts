import type { Keccak256 } from '../../crypto/keccak.ts'
import { type Receipt, receiptsRootOf } from '../../rewards/receiptsTree.ts'
import type { UseCase } from '../../usecases/useCase.ts'
import type { EpochRewards } from './computeEpochRewards.ts'
import type { DeviceScore } from './judgement.ts'

export type EpochReceipts = {
  /** One per scored device, in the scores' order (device address ascending). */
  receipts: Receipt[]
  /** The root every validator signs in the epoch's report (EMPTY_RECEIPTS_ROOT when none). */
  receiptsRoot: `0x${string}`
}

/**
 * Every scored device's receipt for the epoch: its counts by verdict, the use case's measures in
 * its `unitNames` order, its weight and its reward, with the epoch-wide numbers the reward is
 * computed from, so a receipt alone recomputes it.
 */
export function epochReceipts(input: {
  epoch: bigint
  useCase: UseCase
  scores: readonly DeviceScore[]
  rewards: Pick<EpochRewards, 'devicePool' | 'totalWeight' | 'perDevice'>
  keccak: Keccak256
}): EpochReceipts {
  const { epoch, useCase, rewards } = input
  const receipts = input.scores.map(
    (score): Receipt => ({
      epoch,
      device: score.device,
      owner: score.owner,
      submitted: score.submitted,
      accepted: score.accepted,
      rejected: score.rejected,
      units: useCase.unitNames.map((name) => BigInt(score.units[name] ?? 0)),
      weight: score.weight,
      totalWeight: rewards.totalWeight,
      devicePool: rewards.devicePool,
      reward: rewards.perDevice.get(score.device.toLowerCase()) ?? 0n,
    }),
  )
  return { receipts, receiptsRoot: receiptsRootOf(receipts, input.keccak) }
}
