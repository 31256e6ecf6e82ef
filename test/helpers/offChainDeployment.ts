import { getAddress } from 'viem'
import type { Deployment } from '../../src/chain/deployment.ts'

/**
 * A deployment record for components that never touch the chain (a gateway fed by an in-process
 * registry lookup): anvil's usual addresses, and epochs of `epochLength` seconds from `genesisTime`.
 */
export function offChainDeployment(genesisTime: bigint, epochLength: bigint): Deployment {
  return {
    version: 1,
    chainId: 31337,
    deployer: getAddress('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266'),
    startBlock: 1n,
    genesisTime,
    epochLength,
    contracts: {
      depinToken: getAddress('0x5fbdb2315678afecb367f032d93f642f64180aa3'),
      deviceRegistry: getAddress('0xe7f1725e7734ce288f8367e1bb143e90bb3f0512'),
      validatorSet: getAddress('0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0'),
      epochManager: getAddress('0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9'),
      rewardDistributor: getAddress('0xdc64a140aa3e981100a9beca4e685f962f0cf6c9'),
      dataMarket: getAddress('0x5fc8d32690cc91d4c39d9d3abcbd16989f875707'),
    },
  }
}
