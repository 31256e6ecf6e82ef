import type { Address } from 'viem'
import type { ChainClients } from './createChainClients.ts'
import type { Deployment } from './deployment.ts'
import { getContracts } from './getContracts.ts'
import { sendTransaction } from './sendTransaction.ts'

export type ListGatewayParameters = {
  /**
   * Who sends: the registry's owner (the network's governance; on a local network, the
   * deployer), or, with `add: false`, the gateway's own key, which may change its URL only.
   */
  sender: ChainClients
  deployment: Deployment
  /** The gateway's id: its operator's address. */
  gateway: Address
  /** Where validators fetch its sealed batches, e.g. http://127.0.0.1:8546 */
  url: string
  /** Put it on the list when it is not there (default true); false answers 'not listed' instead. */
  add?: boolean
}

/**
 * Puts a gateway on the registry's list, or changes its URL when it is listed with another one;
 * does nothing when it is listed with this URL already. Returns what it did.
 */
export async function listGateway({
  sender,
  deployment,
  gateway,
  url,
  add = true,
}: ListGatewayParameters): Promise<'added' | 'changed' | 'unchanged' | 'not listed'> {
  const { deviceRegistry } = getContracts(sender, deployment)
  const [ids, urls] = await deviceRegistry.read.gateways()
  const index = ids.findIndex((id) => id.toLowerCase() === gateway.toLowerCase())
  if (index >= 0 && urls[index] === url) return 'unchanged'
  if (index < 0 && !add) return 'not listed'
  const write =
    index >= 0
      ? deviceRegistry.write.setGatewayUrl([gateway, url])
      : deviceRegistry.write.addGateway([gateway, url])
  await sendTransaction(sender.publicClient, write, `listing gateway ${gateway}`)
  return index >= 0 ? 'changed' : 'added'
}
