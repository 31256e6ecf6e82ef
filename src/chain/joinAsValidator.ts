import { type Account, parseEther } from 'viem'
import type { ChainClients } from './createChainClients.ts'
import type { Deployment } from './deployment.ts'
import { getContracts } from './getContracts.ts'
import { sendTransaction } from './sendTransaction.ts'

export type JoinAsValidatorParameters = {
  /** A funded account holding tokens (on a local network: the deployer, with the genesis allocation). */
  sponsor: ChainClients
  validator: ChainClients
  deployment: Deployment
  bond: bigint
}

/**
 * Makes `validator` an active validator, if it is not one already: the sponsor sends it gas money
 * and the bond, the validator approves and joins. One transaction at a time. Returns false when
 * it was active already.
 */
export async function joinAsValidator({
  sponsor,
  validator,
  deployment,
  bond,
}: JoinAsValidatorParameters): Promise<boolean> {
  const address = (validator.account as Account).address
  const sponsorContracts = getContracts(sponsor, deployment)
  if (await sponsorContracts.validatorSet.read.isActive([address])) return false
  const wallet = sponsor.walletClient as NonNullable<ChainClients['walletClient']>
  await sendTransaction(
    sponsor.publicClient,
    wallet.sendTransaction({ to: address, value: parseEther('10') }),
  )
  await sendTransaction(sponsor.publicClient, sponsorContracts.depinToken.write.transfer([address, bond]))
  const own = getContracts(validator, deployment)
  await sendTransaction(
    sponsor.publicClient,
    own.depinToken.write.approve([deployment.contracts.validatorSet, bond]),
  )
  await sendTransaction(sponsor.publicClient, own.validatorSet.write.join([bond]))
  return true
}
