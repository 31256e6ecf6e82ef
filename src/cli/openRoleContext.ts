import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { readOperatorKey } from '../chain/connectChain.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { ConfigError } from '../errors.ts'
import { createIndexer } from '../indexer/createIndexer.ts'

/**
 * What a depin role running as a process of its own (a validator, a gateway) starts from: its
 * blueprint and deployment files, chain clients (signing with its key file when it has one),
 * its data dir, and a running indexer of the chain in `<dataDir>/indexer.db`.
 */
export async function openRoleContext(config: {
  blueprint: string
  deployment: string
  rpcUrl: string
  dataDir: string
  keyFile?: string | undefined
}) {
  const blueprint = loadBlueprint(config.blueprint)
  const deployment = readDeployment(config.deployment)
  const privateKey = config.keyFile === undefined ? undefined : readOperatorKey(config.keyFile)
  if (config.keyFile !== undefined && !privateKey) {
    throw new ConfigError('KEY_FILE_EMPTY', `key file ${config.keyFile} is empty`)
  }
  const clients = await createChainClients({
    rpcUrl: config.rpcUrl,
    pollingInterval: 250,
    ...(privateKey ? { privateKey } : {}),
  })
  mkdirSync(config.dataDir, { recursive: true })
  const indexer = createIndexer({
    publicClient: clients.publicClient,
    deployment,
    dbPath: join(config.dataDir, 'indexer.db'),
    pollIntervalMs: 500,
  })
  await indexer.start()
  return { blueprint, deployment, clients, indexer }
}

/**
 * Where others reach a role process: its configured `advertiseUrl`, else the URL it listens on,
 * unless it listens on every interface (0.0.0.0, ::), which names no reachable host.
 */
export const advertisedUrlOf = (host: string, advertiseUrl: string | undefined, listening: string) =>
  advertiseUrl ?? (['0.0.0.0', '::'].includes(host) ? undefined : listening)
