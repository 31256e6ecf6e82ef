import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { checkRules } from '../chain/checkRules.ts'
import { readOperatorKey } from '../chain/connectChain.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { ConfigError, DepinError } from '../errors.ts'
import { createIndexer } from '../indexer/createIndexer.ts'
import type { Context } from '../protocol/context.ts'

/**
 * What a depin role running as a process of its own (a validator, a gateway) starts from: its
 * blueprint and deployment files, chain clients (signing with its key file when it has one),
 * its data dir, and a running indexer of the chain in `<dataDir>/indexer.db`, whose failures
 * go to the process's `context`.
 */
export async function openRoleContext(
  config: {
    blueprint: string
    deployment: string
    rpcUrl: string
    dataDir: string
    keyFile?: string | undefined
    /** How the role's indexer follows the chain (reorg safety; see createIndexer). */
    indexer?: IndexerFollowing | undefined
  },
  context: Context,
) {
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
  // before anything starts: a role running other rules than the network's stops, naming both
  await checkRules(clients, deployment, blueprint)
  mkdirSync(config.dataDir, { recursive: true })
  let lastIndexerError = 0
  const indexer = createIndexer({
    publicClient: clients.publicClient,
    deployment,
    dbPath: join(config.dataDir, 'indexer.db'),
    pollIntervalMs: 500,
    ...followingOptions(config.indexer),
    onReorg: (reorg) =>
      context.log('indexer_reorg', {
        depth: reorg.depth,
        from: reorg.from.block,
        to: reorg.to.block,
        dropped: reorg.dropped,
      }),
    // an RPC hiccup is retried (said once per 30 s); anything else (a reorg) halts the indexer,
    // and a role whose view of the chain stopped cannot work: it stops, loudly
    onError: (error) => {
      if (error instanceof DepinError && !error.retryable) context.fail('INDEXER_HALTED', error)
      if (Date.now() - lastIndexerError < 30_000) return
      lastIndexerError = Date.now()
      context.report('INDEXER_RETRYING', error)
    },
  })
  await indexer.start()
  return { blueprint, deployment, clients, indexer }
}

/** A role config's `indexer` section: confirmations or a block tag, and the finality window. */
export const indexerFollowingSchema = z
  .strictObject({
    confirmations: z.number().int().min(0).optional(),
    blockTag: z.enum(['safe', 'finalized']).optional(),
    finality: z.number().int().min(0).optional(),
  })
  .optional()
export type IndexerFollowing = z.output<typeof indexerFollowingSchema>

const followingOptions = (following: IndexerFollowing) => ({
  ...(following?.confirmations !== undefined ? { confirmations: following.confirmations } : {}),
  ...(following?.blockTag !== undefined ? { blockTag: following.blockTag } : {}),
  ...(following?.finality !== undefined ? { finality: following.finality } : {}),
})

/**
 * Where others reach a role process: its configured `advertiseUrl`, else the URL it listens on,
 * unless it listens on every interface (0.0.0.0, ::), which names no reachable host.
 */
export const advertisedUrlOf = (host: string, advertiseUrl: string | undefined, listening: string) =>
  advertiseUrl ?? (['0.0.0.0', '::'].includes(host) ? undefined : listening)
