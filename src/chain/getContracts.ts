import { type Abi, type Address, getContract } from 'viem'
import { ConfigError } from '../errors.ts'
import type { ChainClients } from './createChainClients.ts'
import type { Deployment } from './deployment.ts'
import {
  dataMarketAbi,
  depinTokenAbi,
  deviceRegistryAbi,
  epochManagerAbi,
  rewardDistributorAbi,
  validatorSetAbi,
} from './generated/contracts.ts'

const abis = {
  depinToken: depinTokenAbi,
  deviceRegistry: deviceRegistryAbi,
  validatorSet: validatorSetAbi,
  epochManager: epochManagerAbi,
  rewardDistributor: rewardDistributorAbi,
  dataMarket: dataMarketAbi,
} as const

function bind<const TAbi extends Abi, TClient extends Parameters<typeof getContract>[0]['client']>(
  address: Address,
  abi: TAbi,
  client: TClient,
) {
  return getContract({ address, abi, client })
}

/** Typed viem contract instances (reads, writes, events) acting as the clients' account. */
export function getContracts(
  clients: Pick<ChainClients, 'publicClient' | 'walletClient'>,
  deployment: Deployment,
) {
  const wallet = clients.walletClient
  if (!wallet) throw new ConfigError('SIGNER_MISSING', 'writing to the contracts needs a private key')
  const client = { public: clients.publicClient, wallet }
  const { contracts: at } = deployment
  return {
    depinToken: bind(at.depinToken, abis.depinToken, client),
    deviceRegistry: bind(at.deviceRegistry, abis.deviceRegistry, client),
    validatorSet: bind(at.validatorSet, abis.validatorSet, client),
    epochManager: bind(at.epochManager, abis.epochManager, client),
    rewardDistributor: bind(at.rewardDistributor, abis.rewardDistributor, client),
    dataMarket: bind(at.dataMarket, abis.dataMarket, client),
  }
}
export type DepinContracts = ReturnType<typeof getContracts>

/** Typed read-only contract instances (reads and events), for indexers and dashboards. */
export function getReadOnlyContracts(clients: Pick<ChainClients, 'publicClient'>, deployment: Deployment) {
  const client = clients.publicClient
  const { contracts: at } = deployment
  return {
    depinToken: bind(at.depinToken, abis.depinToken, client),
    deviceRegistry: bind(at.deviceRegistry, abis.deviceRegistry, client),
    validatorSet: bind(at.validatorSet, abis.validatorSet, client),
    epochManager: bind(at.epochManager, abis.epochManager, client),
    rewardDistributor: bind(at.rewardDistributor, abis.rewardDistributor, client),
    dataMarket: bind(at.dataMarket, abis.dataMarket, client),
  }
}
