import type { FastifyInstance } from 'fastify'
import { type Address, getAddress, isAddress } from 'viem'
import type { Deployment } from '../chain/deployment.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import { buildRewardsTree, type RewardsTree } from '../rewards/rewardsTree.ts'
import type { ValidatorStore } from '../validator/validatorStore.ts'
import { createJsonServer } from './createJsonServer.ts'

export type CreateApiServerOptions = {
  deployment: Deployment
  /** The API's view of the chain. */
  indexer: IndexerStore
  /** A validator store holding the cumulative rewards of settled epochs (for claim proofs). */
  rewards: ValidatorStore
  host?: string
  port?: number
}

export type ApiServer = {
  start(): Promise<void>
  stop(): Promise<void>
  readonly url: string
  server: FastifyInstance
}

/** Settled epochs looked at for each validator's agreement with the quorum. */
const LIVENESS_WINDOW = 20

const toJson = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v))) as unknown

/**
 * The network's read API (step 7 of the mission, minimal for now): status, devices, validators,
 * settled epochs, and each account's cumulative rewards with the Merkle proof that the
 * RewardDistributor accepts against the on-chain root. Amounts are decimal strings (wei).
 */
export function createApiServer(options: CreateApiServerOptions): ApiServer {
  const { deployment, indexer, rewards } = options
  const server = createJsonServer(64 * 1024)
  let cachedTree:
    | { epoch: bigint; tree: RewardsTree | undefined; cumulative: Map<string, bigint> }
    | undefined

  const settledTree = async () => {
    const settled = indexer.epochs(1)[0]
    if (!settled) return undefined
    if (cachedTree?.epoch !== settled.epoch) {
      const result = rewards.result(settled.epoch)
      if (!result || result.report.rewardsRoot !== settled.rewardsRoot) return undefined
      const leaves = [...result.cumulative]
        .filter(([, amount]) => amount > 0n)
        .map(([account, cumulativeAmount]) => ({ account: getAddress(account), cumulativeAmount }))
      cachedTree = {
        epoch: settled.epoch,
        tree: leaves.length > 0 ? await buildRewardsTree(leaves) : undefined,
        cumulative: result.cumulative,
      }
    }
    return cachedTree
  }

  server.get('/v1/status', async () => {
    const now = BigInt(Math.floor(Date.now() / 1000))
    const epochs = indexer.epochs(1)
    const lastProcessed = indexer.lastProcessed()
    return toJson({
      chainId: deployment.chainId,
      contracts: deployment.contracts,
      epochLength: deployment.epochLength,
      currentEpoch:
        now < deployment.genesisTime ? 0n : (now - deployment.genesisTime) / deployment.epochLength,
      lastSettledEpoch: epochs[0] ?? null,
      devices: indexer.deviceCount(),
      validators: indexer.validators().filter((v) => v.status === 'active').length,
      // the registry's gateway list as of the last indexed block
      gateways: indexer.gateways(),
      indexedBlock: lastProcessed?.block ?? null,
    })
  })
  server.get<{ Querystring: { limit?: string } }>('/v1/epochs', async (request) =>
    toJson({ epochs: indexer.epochs(Math.min(Number(request.query.limit ?? 20) || 20, 500)) }),
  )
  server.get<{ Querystring: { owner?: string; limit?: string; offset?: string } }>(
    '/v1/devices',
    async (request, reply) => {
      const { owner } = request.query
      if (owner !== undefined && !isAddress(owner)) {
        return reply
          .status(400)
          .send({ error: { code: 'INVALID_ADDRESS', message: 'owner must be an address', details: {} } })
      }
      return toJson({
        devices: indexer.listDevices({
          ...(owner ? { owner: owner as Address } : {}),
          limit: Math.min(Number(request.query.limit ?? 100) || 100, 1000),
          offset: Number(request.query.offset ?? 0) || 0,
        }),
      })
    },
  )
  server.get('/v1/validators', async () => {
    // liveness and agreement, from the chain alone: which of the last settled reports each signed
    const recent = indexer.epochs(LIVENESS_WINDOW)
    const lastSettled = recent[0]?.epoch
    const endpoints = new Map(indexer.validatorEndpoints().map((e) => [e.validator.toLowerCase(), e.url]))
    return toJson({
      window: recent.length,
      lastSettledEpoch: lastSettled ?? null,
      validators: indexer.validators().map((v) => {
        const signed = recent.filter((e) =>
          e.signers.some((s) => s.toLowerCase() === v.validator.toLowerCase()),
        )
        const lastSigned = indexer
          .epochs()
          .find((e) => e.signers.some((s) => s.toLowerCase() === v.validator.toLowerCase()))?.epoch
        return {
          ...v,
          /** Where its peers reach it, as it advertised on-chain (active validators only). */
          endpoint: endpoints.get(v.validator.toLowerCase()) ?? null,
          lastSignedEpoch: lastSigned ?? null,
          signedRecent: signed.length,
          /** Share of the last settled reports it signed, in basis points. */
          agreementBps: recent.length === 0 ? 0 : Math.floor((signed.length * 10_000) / recent.length),
          live:
            v.status === 'active' &&
            lastSigned !== undefined &&
            lastSettled !== undefined &&
            lastSettled - lastSigned < 3n,
        }
      }),
    })
  })
  server.get<{ Params: { account: string } }>('/v1/rewards/:account', async (request, reply) => {
    if (!isAddress(request.params.account)) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_ADDRESS', message: 'not an address', details: {} } })
    }
    const account = getAddress(request.params.account)
    const settled = await settledTree()
    // claims only ever raise an account's claimed total, so the latest claim holds it
    const claimed = indexer.claims(account).at(-1)?.cumulativeAmount ?? 0n
    const cumulativeAmount = settled?.cumulative.get(account.toLowerCase()) ?? 0n
    return toJson({
      account,
      epoch: settled?.epoch ?? null,
      rewardsRoot: indexer.epochs(1)[0]?.rewardsRoot ?? null,
      cumulativeAmount,
      claimed,
      claimable: cumulativeAmount - claimed,
      proof: cumulativeAmount > 0n ? (settled?.tree?.getProof(account) ?? null) : null,
    })
  })

  let url = ''
  return {
    server,
    get url() {
      return url
    },
    async start() {
      url = await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
    },
    async stop() {
      await server.close()
    },
  }
}
