import type { Address } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { getContracts } from '../chain/getContracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'

/**
 * Puts a data-market provider (an API operator's address) on the DataMarket's list with the URL
 * where validators fetch its served bundles, or changes its URL when it is listed with another
 * one; does nothing when it is listed with this URL already. The sender is the market's owner
 * (the network's governance; on a local network, the deployer). Returns what it did.
 */
export async function listProvider(options: {
  sender: ChainClients
  deployment: Deployment
  provider: Address
  url: string
}): Promise<'added' | 'changed' | 'unchanged'> {
  const { dataMarket } = getContracts(options.sender, options.deployment)
  const { provider, url } = options
  if (await dataMarket.read.isProvider([provider])) {
    if ((await dataMarket.read.providerUrl([provider])) === url) return 'unchanged'
    await sendTransaction(
      options.sender.publicClient,
      dataMarket.write.setProviderUrl([provider, url]),
      `changing provider ${provider}'s URL`,
    )
    return 'changed'
  }
  await sendTransaction(
    options.sender.publicClient,
    dataMarket.write.addProvider([provider, url]),
    `listing provider ${provider}`,
  )
  return 'added'
}
