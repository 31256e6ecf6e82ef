import type { Address, Hex } from 'viem'
import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../crypto/keccak.ts'
import { DepinError } from '../../errors.ts'
import {
  cumulativeRewardsRoot,
  cumulativeRewardsTree,
  EMPTY_REWARDS_ROOT,
  type RewardsTree,
} from '../../rewards/rewardsTree.ts'
import { epochEmission } from './epochEmission.ts'
import type { DeviceScore } from './judgement.ts'

// Loaded once when the module loads, so computeEpochRewards stays synchronous.
const keccak = await loadKeccak256()

export type ComputeEpochRewardsInput = {
  blueprint: Blueprint
  epoch: bigint
  /** The epoch's device scores (judgeEpoch's `devices`). */
  scores: readonly DeviceScore[]
  /** Validators that signed the previous settled epoch's report: they share this epoch's validator pool. */
  previousSigners: readonly Address[]
  /** Cumulative amounts after the previous settled epoch, by lower-case account. */
  previousCumulative: ReadonlyMap<string, bigint>
  /**
   * Usage fees the epoch credits (src/market/splitFees.ts), by lower-case account: paid from the
   * RewardDistributor's fee pool, which the redemptions filled. Omitted: none.
   */
  fees?: ReadonlyMap<string, bigint>
}

export type EpochRewards = {
  /** emissionFor(epoch). */
  emission: bigint
  /** Everything credited this epoch: emission credits (≤ emission: floor dust is not minted) plus fees. */
  total: bigint
  /** This epoch's usage fees, by lower-case account, accounts ascending, no zero entries. */
  perFeeAccount: Map<string, bigint>
  /** emission × deviceShareBps / 10000: what the devices share. */
  devicePool: bigint
  /** Σ weight of the epoch's scores. */
  totalWeight: bigint
  /** Each scored device's credit, devicePool × weight / totalWeight (floored), by lower-case device. */
  perDevice: Map<string, bigint>
  /** This epoch's credits to device owners, by lower-case account, accounts ascending, no zero entries. */
  perOwner: Map<string, bigint>
  /** This epoch's credits to validators, by lower-case account, accounts ascending, no zero entries. */
  perValidator: Map<string, bigint>
  /** previousCumulative plus this epoch's credits, by lower-case account, accounts ascending. */
  cumulative: Map<string, bigint>
  /** Root of the claim tree over every account with a positive cumulative amount, or EMPTY_REWARDS_ROOT. */
  rewardsRoot: Hex
  /** That tree (checksummed accounts), undefined when empty. */
  tree: RewardsTree | undefined
}

/**
 * Splits one epoch's emission, in integers only: emission = DepinToken.emissionFor(epoch);
 * devicePool = emission × deviceShareBps / 10000, the rest is the validator pool. Each device earns
 * devicePool × weight / Σweight (floored; nothing when Σweight = 0), credited to its owner; the
 * validator pool is split equally (floored) among the distinct previous signers (unpaid when there
 * are none). The rounding dust is simply never minted. The claim tree commits to cumulative amounts,
 * so one claim against any root still in the RewardDistributor's ring pays everything owed.
 */
export function computeEpochRewards(input: ComputeEpochRewardsInput): EpochRewards {
  const { blueprint, scores } = input
  const emission = epochEmission(blueprint.token, input.epoch)
  const devicePool = (emission * BigInt(blueprint.rewards.deviceShareBps)) / 10_000n
  const validatorPool = emission - devicePool

  let totalWeight = 0n
  for (const score of scores) {
    if (score.weight < 0n) {
      throw new DepinError('REWARDS_NEGATIVE_WEIGHT', `device ${score.device} has a negative weight`, {
        details: { device: score.device, weight: score.weight.toString() },
      })
    }
    totalWeight += score.weight
  }
  const perOwner = new Map<string, bigint>()
  const perDevice = new Map<string, bigint>()
  for (const score of scores) {
    const reward = totalWeight > 0n ? (devicePool * score.weight) / totalWeight : 0n
    perDevice.set(score.device.toLowerCase(), reward)
    credit(perOwner, score.owner, reward)
  }

  const perValidator = new Map<string, bigint>()
  const signers = new Set(input.previousSigners.map((signer) => signer.toLowerCase()))
  if (signers.size > 0) {
    const share = validatorPool / BigInt(signers.size)
    for (const signer of signers) credit(perValidator, signer, share)
  }

  const perFeeAccount = new Map<string, bigint>()
  for (const [account, amount] of input.fees ?? []) {
    if (amount < 0n)
      throw new DepinError('REWARDS_NEGATIVE_FEE', `account ${account} has a negative fee credit`)
    credit(perFeeAccount, account, amount)
  }

  let total = 0n
  for (const amount of perOwner.values()) total += amount
  for (const amount of perValidator.values()) total += amount
  for (const amount of perFeeAccount.values()) total += amount

  const cumulative = new Map<string, bigint>()
  for (const [account, amount] of input.previousCumulative) {
    if (amount < 0n) {
      throw new DepinError(
        'REWARDS_NEGATIVE_CUMULATIVE',
        `account ${account} has a negative cumulative amount`,
        {
          details: { account, amount: amount.toString() },
        },
      )
    }
    credit(cumulative, account, amount)
  }
  for (const credits of [perOwner, perValidator, perFeeAccount]) {
    for (const [account, amount] of credits) credit(cumulative, account, amount)
  }

  const tree = cumulativeRewardsTree(cumulative, keccak)
  return {
    emission,
    total,
    devicePool,
    totalWeight,
    perDevice,
    perOwner: sortedByAccount(perOwner),
    perValidator: sortedByAccount(perValidator),
    perFeeAccount: sortedByAccount(perFeeAccount),
    cumulative: sortedByAccount(cumulative),
    rewardsRoot: tree?.root ?? EMPTY_REWARDS_ROOT,
    tree,
  }
}

/**
 * The rewards root of cumulative amounts (by account, any case), as computeEpochRewards makes
 * it: what a validator checks amounts from a peer against before building on them.
 */
export const rewardsRootOf = (cumulative: ReadonlyMap<string, bigint>): Hex =>
  cumulativeRewardsRoot(cumulative, keccak)

/** Adds a positive amount to an account's entry (accounts compared in lower case). */
function credit(credits: Map<string, bigint>, account: string, amount: bigint): void {
  if (amount === 0n) return
  const key = account.toLowerCase()
  credits.set(key, (credits.get(key) ?? 0n) + amount)
}

/** The same entries, in ascending account order, so iterating never depends on input order. */
function sortedByAccount(credits: Map<string, bigint>): Map<string, bigint> {
  return new Map([...credits].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
