import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { ChainError } from '../errors.ts'

export type CreateChainClientsParameters = {
  rpcUrl: string
  /** Signs transactions; omit for read-only clients. Never logged. */
  privateKey?: Hex
  /** Milliseconds between receipt polls (default 100: anvil mines at once). */
  pollingInterval?: number
}

export type ChainClients = {
  chain: Chain
  publicClient: PublicClient<Transport, Chain>
  walletClient: WalletClient<Transport, Chain, Account> | undefined
  account: Account | undefined
}

/** Connects to any EVM JSON-RPC endpoint: asks its chain id, returns typed viem clients. */
export async function createChainClients(parameters: CreateChainClientsParameters): Promise<ChainClients> {
  const transport = http(parameters.rpcUrl, { retryCount: 2 })
  const probe = createPublicClient({ transport })
  let chainId: number
  try {
    chainId = await probe.getChainId()
  } catch (cause) {
    throw new ChainError('RPC_UNREACHABLE', `no EVM JSON-RPC answers at ${parameters.rpcUrl}`, { cause })
  }
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [parameters.rpcUrl] } },
  })
  const pollingInterval = parameters.pollingInterval ?? 100
  const publicClient = createPublicClient({ chain, transport, pollingInterval })
  const account = parameters.privateKey ? privateKeyToAccount(parameters.privateKey) : undefined
  const walletClient = account
    ? createWalletClient({ chain, transport, account, pollingInterval })
    : undefined
  return { chain, publicClient, walletClient, account }
}
