import type { Address } from 'viem'
import type { ChainClients } from './createChainClients.ts'
import type { Deployment } from './deployment.ts'
import { getContracts } from './getContracts.ts'
import { sendTransaction } from './sendTransaction.ts'

export type ListGatewayParameters = {
  /** The registry's owner (the network's governance; on a local network, the deployer). */
  governance: ChainClients
  deployment: Deployment
  /** The gateway's id: its operator's address. */
  gateway: Address
  /** Where validators fetch its sealed batches, e.g. http://127.0.0.1:8546 */
  url: string
}

/**
 * Puts a gateway on the registry's list, or changes its URL when it is listed with another one;
 * does nothing when it is listed with this URL already. Returns what it did.
 */
export async function listGateway({
  governance,
  deployment,
  gateway,
  url,
}: ListGatewayParameters): Promise<'added' | 'changed' | 'unchanged'> {
  const { deviceRegistry } = getContracts(governance, deployment)
  const [ids, urls] = await deviceRegistry.read.gateways()
  const index = ids.findIndex((id) => id.toLowerCase() === gateway.toLowerCase())
  if (index >= 0 && urls[index] === url) return 'unchanged'
  const write =
    index >= 0
      ? deviceRegistry.write.setGatewayUrl([gateway, url])
      : deviceRegistry.write.addGateway([gateway, url])
  await sendTransaction(governance.publicClient, write, `listing gateway ${gateway}`)
  return index >= 0 ? 'changed' : 'added'
}
