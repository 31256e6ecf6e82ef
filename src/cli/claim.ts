import { type Address, formatUnits, getAddress, isAddress } from 'viem'
import { operatorKeyOrLocalDefault } from '../chain/connectChain.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { getContracts } from '../chain/getContracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { ConfigError } from '../errors.ts'
import { askApi } from './askApi.ts'

export type ClaimOptions = { owner: string; api: string; rpcUrl: string; dataDir: string; keyFile?: string }

/**
 * `depin claim --owner …`: asks the API for the owner's cumulative rewards and proof against the
 * latest on-chain root, and submits the claim (any account may; the tokens go to the owner).
 */
export async function runClaim(options: ClaimOptions): Promise<void> {
  if (!isAddress(options.owner))
    throw new ConfigError('INVALID_ADDRESS', `--owner ${options.owner} is not an address`)
  const owner = getAddress(options.owner)
  const rewards = await askApi<{
    cumulativeAmount: string
    claimable: string
    proof: Address[] | null
    epoch: string | null
  }>(options.api, `/v1/rewards/${owner}`)
  if (!rewards.proof || BigInt(rewards.claimable) <= 0n) {
    console.log(
      `nothing to claim for ${owner} (cumulative ${formatUnits(BigInt(rewards.cumulativeAmount), 18)}, already claimed; epoch ${rewards.epoch ?? 'none'})`,
    )
    return
  }
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const privateKey = operatorKeyOrLocalDefault(options.keyFile, deployment.chainId)
  if (!privateKey)
    throw new ConfigError(
      'SIGNER_MISSING',
      'a claim needs a key to pay its gas: --key-file or DEPIN_PRIVATE_KEY',
    )
  const chain = await createChainClients({ rpcUrl: options.rpcUrl, privateKey })
  const contracts = getContracts(chain, deployment)
  const before = await contracts.depinToken.read.balanceOf([owner])
  const receipt = await sendTransaction(
    chain.publicClient,
    contracts.rewardDistributor.write.claim([owner, BigInt(rewards.cumulativeAmount), rewards.proof]),
    'claim',
  )
  const after = await contracts.depinToken.read.balanceOf([owner])
  const symbol = await contracts.depinToken.read.symbol()
  console.log(
    `claimed ${formatUnits(after - before, 18)} ${symbol} for ${owner} (cumulative ${formatUnits(BigInt(rewards.cumulativeAmount), 18)}, epoch ${rewards.epoch}), tx ${receipt.transactionHash}`,
  )
}
