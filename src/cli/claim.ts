import { BaseError, ContractFunctionRevertedError, formatUnits, getAddress, type Hex, isAddress } from 'viem'
import { operatorKeyOrLocalDefault } from '../chain/connectChain.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { getContracts } from '../chain/getContracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { ChainError, ConfigError } from '../errors.ts'
import { askApi } from './askApi.ts'

export type ClaimOptions = {
  owner: string
  api: string
  rpcUrl: string
  dataDir: string
  keyFile?: string
  /** Where the command's lines go (default: stdout). */
  print?: (line: string) => void
}

/** The API's answer to `GET /v1/rewards/:account`: amounts as decimal strings, the proof's epoch and root. */
type RewardsAnswer = {
  cumulativeAmount: string
  claimable: string
  proof: Hex[] | null
  epoch: string | null
  rewardsRoot: Hex | null
}

/** The distributor's refusals that a fresh proof can cure: the proof's root left the ring, or is not on this chain yet. */
const ROOT_MOVED = new Set(['DistributorRootExpired', 'DistributorNoRoot'])

/**
 * `depin claim --owner …`: asks the API for the owner's cumulative rewards and their proof against
 * a rewards root the distributor holds (it names the root's epoch), and submits the claim (any
 * account may; the tokens go to the owner). When the root moved between the fetch and the send
 * (a newer epoch settled, or the proof's root left the distributor's ring of the last
 * ROOT_RING_SIZE roots), it says so, fetches a fresh proof and tries once more.
 */
export async function runClaim(options: ClaimOptions): Promise<void> {
  const print = options.print ?? console.log
  if (!isAddress(options.owner))
    throw new ConfigError('INVALID_ADDRESS', `--owner ${options.owner} is not an address`)
  const owner = getAddress(options.owner)
  const fetchRewards = () => askApi<RewardsAnswer>(options.api, `/v1/rewards/${owner}`)
  let rewards = await fetchRewards()
  const nothingToClaim = () => {
    if (rewards.proof && rewards.epoch !== null && BigInt(rewards.claimable) > 0n) return false
    print(
      `nothing to claim for ${owner} (cumulative ${formatUnits(BigInt(rewards.cumulativeAmount), 18)}, already claimed; epoch ${rewards.epoch ?? 'none'})`,
    )
    return true
  }
  if (nothingToClaim()) return
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const privateKey = operatorKeyOrLocalDefault(options.keyFile, deployment.chainId)
  if (!privateKey)
    throw new ConfigError(
      'SIGNER_MISSING',
      'a claim needs a key to pay its gas: --key-file or DEPIN_PRIVATE_KEY',
    )
  const chain = await createChainClients({ rpcUrl: options.rpcUrl, privateKey })
  const { depinToken, rewardDistributor } = getContracts(chain, deployment)

  let retried = false
  const refetch = async (why: string) => {
    retried = true
    rewards = await fetchRewards()
    print(`${why}: fetched a fresh proof, now against epoch ${rewards.epoch ?? 'none'}`)
  }
  // A newer root may have settled since the fetch: the fetched one still pays (the distributor
  // keeps the last ROOT_RING_SIZE), but a proof against the newer one may pay more.
  const latest = await rewardDistributor.read.rootEpoch()
  if (rewards.epoch !== null && latest > BigInt(rewards.epoch))
    await refetch(
      `the rewards root moved from epoch ${rewards.epoch} to ${latest} since the proof was fetched`,
    )

  const before = await depinToken.read.balanceOf([owner])
  for (;;) {
    if (nothingToClaim()) return
    const epoch = BigInt(rewards.epoch as string)
    try {
      const receipt = await sendTransaction(
        chain.publicClient,
        rewardDistributor.write.claim([
          owner,
          BigInt(rewards.cumulativeAmount),
          epoch,
          rewards.proof as Hex[],
        ]),
        'claim',
      )
      const after = await depinToken.read.balanceOf([owner])
      const symbol = await depinToken.read.symbol()
      print(
        `claimed ${formatUnits(after - before, 18)} ${symbol} for ${owner} (cumulative ${formatUnits(BigInt(rewards.cumulativeAmount), 18)}, epoch ${epoch}), tx ${receipt.transactionHash}`,
      )
      return
    } catch (error) {
      const refusal = distributorRefusal(error)
      if (!refusal) throw error
      if (retried || !ROOT_MOVED.has(refusal))
        throw new ChainError(
          'CLAIM_REFUSED',
          `the distributor refused the claim against epoch ${epoch}: ${refusal}`,
          {
            details: { owner, epoch: String(epoch), cumulativeAmount: rewards.cumulativeAmount },
            cause: error,
          },
        )
      await refetch(
        `the rewards root moved between fetch and send (the claim against epoch ${epoch} reverted with ${refusal})`,
      )
    }
  }
}

/** The name of the distributor's custom error a failed claim reverted with, if it did. */
function distributorRefusal(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined
  const revert = error.walk((e) => e instanceof ContractFunctionRevertedError)
  return revert instanceof ContractFunctionRevertedError ? revert.data?.errorName : undefined
}
