import type { Hex } from 'viem'
import { DepinError } from '../errors.ts'
import type { ChainClients } from './createChainClients.ts'
import type { Deployment } from './deployment.ts'
import { getContracts } from './getContracts.ts'

/**
 * Checks that the rules a role runs (its blueprint's rules hash) are the ones the network's
 * EpochManager pins; throws RULES_MISMATCH naming both hashes otherwise. A validator with other
 * rules would sign reports nobody else signs and the chain refuses; a gateway with them would
 * accept what the validators reject. A change of rules is a new deployment.
 */
export async function checkRules(
  clients: Pick<ChainClients, 'publicClient'>,
  deployment: Deployment,
  local: { rulesHash: Hex; useCase: string },
): Promise<void> {
  const pinned = (
    await getContracts(clients as ChainClients, deployment).epochManager.read.rulesHash()
  ).toLowerCase() as Hex
  if (pinned === local.rulesHash.toLowerCase()) return
  throw new DepinError(
    'RULES_MISMATCH',
    `this node's rules hash is ${local.rulesHash} (its blueprint, use case ${local.useCase}); the network's EpochManager pins ${pinned}: run the network's blueprint, or deploy a new network for new rules`,
    { details: { local: local.rulesHash, network: pinned } },
  )
}
