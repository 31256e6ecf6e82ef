import { getAddress, isAddress } from 'viem'
import { operatorKeyOrLocalDefault } from '../chain/connectChain.ts'
import { type ChainClients, createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { getContracts } from '../chain/getContracts.ts'
import { listGateway } from '../chain/listGateway.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { ConfigError } from '../errors.ts'

export type GatewayOptions = { rpcUrl: string; dataDir: string; keyFile?: string }

async function connect(options: GatewayOptions, signing: boolean) {
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const privateKey = operatorKeyOrLocalDefault(options.keyFile, deployment.chainId)
  if (signing && !privateKey)
    throw new ConfigError(
      'SIGNER_MISSING',
      "changing the gateway list needs governance's key: --key-file or DEPIN_PRIVATE_KEY",
    )
  const clients: ChainClients = await createChainClients({
    rpcUrl: options.rpcUrl,
    ...(privateKey ? { privateKey } : {}),
  })
  return { deployment, clients }
}

function gatewayId(id: string) {
  if (!isAddress(id)) throw new ConfigError('INVALID_ADDRESS', `--id ${id} is not an address`)
  return getAddress(id)
}

/** `depin gateway list`: the gateways validators fetch batches from, with their URLs. */
export async function runGatewayList(options: GatewayOptions): Promise<void> {
  const { deployment, clients } = await connect(options, false)
  const [ids, urls] = await getContracts(clients, deployment).deviceRegistry.read.gateways()
  if (ids.length === 0) console.log('no gateways listed')
  for (const [i, id] of ids.entries()) console.log(`${id} ${urls[i]}`)
}

/** `depin gateway set --id … --url …`: lists a gateway, or changes its URL (governance's key). */
export async function runGatewaySet(options: GatewayOptions & { id: string; url: string }): Promise<void> {
  if (!/^https?:\/\/\S+$/.test(options.url))
    throw new ConfigError('INVALID_URL', `--url ${options.url} is not an http(s) URL`)
  const { deployment, clients } = await connect(options, true)
  const gateway = gatewayId(options.id)
  const done = await listGateway({ sender: clients, deployment, gateway, url: options.url })
  console.log(`gateway ${gateway} ${done === 'unchanged' ? 'already listed at' : `${done}:`} ${options.url}`)
}

/** `depin gateway remove --id …`: takes a gateway off the list (governance's or the gateway's key). */
export async function runGatewayRemove(options: GatewayOptions & { id: string }): Promise<void> {
  const { deployment, clients } = await connect(options, true)
  const gateway = gatewayId(options.id)
  const receipt = await sendTransaction(
    clients.publicClient,
    getContracts(clients, deployment).deviceRegistry.write.removeGateway([gateway]),
    `removing gateway ${gateway}`,
  )
  console.log(`gateway ${gateway} removed, tx ${receipt.transactionHash}`)
}
