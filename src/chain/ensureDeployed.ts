import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../errors.ts'
import { readJsonFile } from '../readJsonFile.ts'
import type { ChainClients } from './createChainClients.ts'
import { deployContracts } from './deployContracts.ts'
import {
  type Deployment,
  defaultNetworkParameters,
  type NetworkParameters,
  networkParametersSchema,
  readDeployment,
  writeDeployment,
} from './deployment.ts'
import { protocolCodeHash } from './generated/contracts.ts'

export type EnsureDeployedParameters = {
  clients: ChainClients
  dataDir: string
  parameters?: NetworkParameters
  /** Deploy anew even when the data dir names a live deployment. */
  force?: boolean
  onProgress?: (message: string) => void
}

export type EnsureDeployedReturnType = { deployment: Deployment; path: string; deployed: boolean }

/** The deployment file's place in a data dir. */
export const deploymentPath = (dataDir: string) => join(dataDir, 'deployment.json')

/**
 * Reuses the deployment recorded in the data dir when its contracts are live on this chain and
 * were deployed from this depin's contract code, else deploys the protocol and records it. A recorded deployment whose contracts are gone
 * (another chain, a wiped node) is an error unless `force` is set: silently deploying a second
 * network would strand every device and reward of the first.
 */
export async function ensureDeployed({
  clients,
  dataDir,
  parameters = defaultNetworkParameters,
  force = false,
  onProgress = () => {},
}: EnsureDeployedParameters): Promise<EnsureDeployedReturnType> {
  const path = deploymentPath(dataDir)
  if (existsSync(path) && !force) {
    const deployment = readDeployment(path)
    if (deployment.codeHash !== protocolCodeHash) {
      throw new ConfigError(
        'DEPLOYMENT_OUTDATED',
        `${path} records a network deployed from other contract code than this depin's; start a new network with another --data-dir, or replace this one with \`depin deploy --force\``,
        { details: { recorded: deployment.codeHash ?? null, current: protocolCodeHash } },
      )
    }
    // the file, checked first, needs no chain; then the chain must have its contracts
    const code = await clients.publicClient.getCode({ address: deployment.contracts.epochManager })
    if (deployment.chainId === clients.chain.id && code !== undefined && code !== '0x') {
      onProgress(`using the deployment in ${path} (chain ${deployment.chainId})`)
      return { deployment, path, deployed: false }
    }
    throw new ConfigError(
      'DEPLOYMENT_NOT_ON_CHAIN',
      `${path} records contracts on chain ${deployment.chainId} that this chain (${clients.chain.id}) does not have; pass --force to deploy a new network`,
    )
  }
  const deployment = await deployContracts({ clients, parameters, onProgress })
  writeDeployment(path, deployment)
  onProgress(`wrote ${path}`)
  return { deployment, path, deployed: true }
}

/** Reads network parameters from a JSON file; errors name the file and the field. */
export function readNetworkParameters(path: string): NetworkParameters {
  return readJsonFile(path, networkParametersSchema, 'PARAMETERS_INVALID', 'network parameters')
}
