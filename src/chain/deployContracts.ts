import { type Address, getContractAddress, type Hash } from 'viem'
import { ChainError, ConfigError } from '../errors.ts'
import type { ChainClients } from './createChainClients.ts'
import { type Deployment, type NetworkParameters, NO_RULES_HASH } from './deployment.ts'
import {
  dataMarketAbi,
  dataMarketBytecode,
  depinTokenAbi,
  depinTokenBytecode,
  deviceRegistryAbi,
  deviceRegistryBytecode,
  epochManagerAbi,
  epochManagerBytecode,
  protocolCodeHash,
  rewardDistributorAbi,
  rewardDistributorBytecode,
  validatorSetAbi,
  validatorSetBytecode,
} from './generated/contracts.ts'

export type DeployContractsParameters = {
  clients: ChainClients
  parameters: NetworkParameters
  /** Called with a line per step (progress output). */
  onProgress?: (message: string) => void
}

/**
 * Deploys the six protocol contracts and adds the device classes. The contracts reference each
 * other through immutable addresses, so there is no privileged wiring step: the deployer's next
 * six nonces give the addresses before anything is sent, and each deployment is checked
 * against its prediction. Transactions go one at a time (anvil can leave pipelined ones unmined).
 */
export async function deployContracts({
  clients,
  parameters,
  onProgress = () => {},
}: DeployContractsParameters): Promise<Deployment> {
  const { publicClient, walletClient, account } = clients
  if (!walletClient || !account) {
    throw new ConfigError('DEPLOYER_KEY_MISSING', 'deploying needs a funded deployer key')
  }
  const deployer = account.address
  const nonce = await publicClient.getTransactionCount({ address: deployer, blockTag: 'pending' })
  const predict = (offset: number) => getContractAddress({ from: deployer, nonce: BigInt(nonce + offset) })
  const addresses = {
    depinToken: predict(0),
    deviceRegistry: predict(1),
    validatorSet: predict(2),
    epochManager: predict(3),
    rewardDistributor: predict(4),
    dataMarket: predict(5),
  }
  const latest = await publicClient.getBlock({ blockTag: 'latest' })
  const genesisTime = parameters.epochs.genesisTime ?? latest.timestamp
  const { token, registry, validators, epochs, market } = parameters

  const wait = async (name: keyof typeof addresses, hash: Hash): Promise<bigint> => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new ChainError('DEPLOY_REVERTED', `deploying ${name} reverted`)
    if (receipt.contractAddress?.toLowerCase() !== addresses[name].toLowerCase()) {
      throw new ChainError(
        'DEPLOY_ADDRESS_MISMATCH',
        `${name} landed at ${receipt.contractAddress}, not at the predicted ${addresses[name]}: another transaction from the deployer interleaved; deploy again`,
      )
    }
    onProgress(`deployed ${name} at ${addresses[name]} (gas ${receipt.gasUsed})`)
    return receipt.blockNumber
  }

  const startBlock = await wait(
    'depinToken',
    await walletClient.deployContract({
      abi: depinTokenAbi,
      bytecode: depinTokenBytecode,
      args: [
        token.name,
        token.symbol,
        addresses.rewardDistributor,
        deployer,
        token.genesisSupply,
        token.initialEpochEmission,
        token.halvingInterval,
      ],
    }),
  )
  await wait(
    'deviceRegistry',
    await walletClient.deployContract({
      abi: deviceRegistryAbi,
      bytecode: deviceRegistryBytecode,
      args: [deployer, registry.relocationCooldown],
    }),
  )
  await wait(
    'validatorSet',
    await walletClient.deployContract({
      abi: validatorSetAbi,
      bytecode: validatorSetBytecode,
      args: [
        addresses.depinToken,
        addresses.epochManager,
        addresses.rewardDistributor,
        validators.minBond,
        validators.unbondingDelay,
        validators.maxValidators,
        validators.slashRewardBps,
      ],
    }),
  )
  await wait(
    'epochManager',
    await walletClient.deployContract({
      abi: epochManagerAbi,
      bytecode: epochManagerBytecode,
      args: [
        addresses.validatorSet,
        addresses.rewardDistributor,
        genesisTime,
        epochs.epochLength,
        parameters.rulesHash ?? NO_RULES_HASH,
      ],
    }),
  )
  await wait(
    'rewardDistributor',
    await walletClient.deployContract({
      abi: rewardDistributorAbi,
      bytecode: rewardDistributorBytecode,
      args: [addresses.depinToken, addresses.epochManager],
    }),
  )
  await wait(
    'dataMarket',
    await walletClient.deployContract({
      abi: dataMarketAbi,
      bytecode: dataMarketBytecode,
      args: [
        addresses.depinToken,
        addresses.rewardDistributor,
        deployer,
        market.treasury ?? deployer,
        market.withdrawalDelay,
      ],
    }),
  )
  for (const deviceClass of registry.deviceClasses) {
    const hash = await walletClient.writeContract({
      address: addresses.deviceRegistry,
      abi: deviceRegistryAbi,
      functionName: 'addDeviceClass',
      args: [deviceClass.id, deviceClass.requiresMaker],
    })
    await publicClient.waitForTransactionReceipt({ hash })
    onProgress(
      `added device class ${deviceClass.id}${deviceClass.requiresMaker ? ' (maker attestation required)' : ''}`,
    )
  }

  return {
    version: 1,
    chainId: clients.chain.id,
    deployer: deployer as Address,
    startBlock,
    genesisTime,
    epochLength: epochs.epochLength,
    rulesHash: parameters.rulesHash ?? NO_RULES_HASH,
    codeHash: protocolCodeHash,
    contracts: addresses,
  }
}
