import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { cellToLatLng, isValidCell } from 'h3-js'
import { getAddress, isAddress } from 'viem'
import type { z } from 'zod'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import { type Deployment, runningEpoch } from '../chain/deployment.ts'
import { hashEpochReport } from '../chain/signEpochReport.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import { registerIndexerMetrics } from '../indexer/indexerMetrics.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import type { Paywall } from '../market/createPaywall.ts'
import type { Context } from '../protocol/context.ts'
import { createMetrics, type Metrics } from '../protocol/metrics.ts'
import { describeReceipt, rejectedByReason, unitsByName } from '../rewards/describeReceipt.ts'
import { RECEIPT_LEAF_TYPES, receiptToJson } from '../rewards/receiptsTree.ts'
import { buildRewardsTree, type RewardsTree } from '../rewards/rewardsTree.ts'
import { useCaseOf } from '../usecases/registry.ts'
import type { UseCaseApi } from '../usecases/useCase.ts'
import { rejectReasonsOf } from '../validator/judge/judgement.ts'
import type { ValidatorStore } from '../validator/validatorStore.ts'
import {
  devicesQuerySchema,
  epochsQuerySchema,
  MAX_STREAM_READINGS,
  previewQuerySchema,
  readingsQuerySchema,
  receiptsQuerySchema,
  streamQuerySchema,
  windowOf,
} from './apiQueries.ts'
import { createJsonServer, serveMetrics } from './createJsonServer.ts'
import { createReadingProver } from './createReadingProver.ts'
import { createReceiptProver } from './createReceiptProver.ts'
import { createDeviceLocator } from './locateDevices.ts'
import { openApiDocument } from './openApiDocument.ts'
import { MAP_HEIGHT, MAP_WIDTH, projectBaseMap, projectPoint } from './projectBaseMap.ts'

export type CreateApiServerOptions = {
  deployment: Deployment
  /** The network's blueprint: the device classes' fields, for queries by field name. */
  blueprint: Blueprint
  /** The API's view of the chain. */
  indexer: IndexerStore
  /**
   * A validator store holding the cumulative rewards of settled epochs (for claim proofs) and
   * their accepted readings (for readings with proofs).
   */
  rewards: ValidatorStore
  host?: string
  port?: number
  /** The chain's JSON-RPC URL as browsers reach it: the dashboard checks proofs against it itself. */
  rpcUrl?: string
  /** Failures nobody awaits (a live stream's tick); the stream is closed with an `error` event. */
  onError?: (failure: { code: string; error: unknown }) => void
  /** The process's context: without `onError`, such failures are reported through it. */
  context?: Context
  /** Where its metrics go, served at GET /metrics (default: the context's, else its own). */
  metrics?: Metrics
  /**
   * The data market, when this API is a provider: `/v1/readings` and the use case's priced routes
   * are paid (src/market/createPaywall.ts), and the market's routes are served. Omitted, all is free.
   */
  paywall?: Paywall
  /**
   * Requests a second each source may make (@fastify/rate-limit; a 429 RATE_LIMITED beyond):
   * a signed-in consumer of the data market is counted by its address (`perConsumer`, default 50),
   * anyone else by IP (`perIp`, default 200); an SSE stream counts once.
   */
  rateLimit?: { perIp?: number; perConsumer?: number }
  /**
   * Where readings are paid, how old a reading must be for the free preview
   * (`/v1/devices/:device/latest`, the dashboard's) to show it, s (default 3,600).
   */
  previewDelaySeconds?: number
  /** How long a paid stream waits for the voucher of a part it sent before it closes, ms (default 60 s). */
  streamPaymentTimeoutMs?: number
}

export type ApiServer = {
  start(): Promise<void>
  stop(): Promise<void>
  readonly url: string
  server: FastifyInstance
  /** The paths of the API's own routes (under /v1), as registered. */
  readonly routes: readonly string[]
}

/** The dashboard's files in web/, with their content types. */
const DASHBOARD_FILES = [
  ['index.html', 'text/html; charset=utf-8'],
  ['dashboard.js', 'text/javascript; charset=utf-8'],
  ['dashboard.css', 'text/css; charset=utf-8'],
  ['verifyReading.js', 'text/javascript; charset=utf-8'],
] as const

/** Settled epochs a stream sends at most per second (a client resuming far back catches up). */
const STREAM_EPOCHS_PER_TICK = 50

/** Streams one IP, and one paying consumer, may hold open at once. */
const MAX_STREAMS_PER_IP = 32
const MAX_STREAMS_PER_CONSUMER = 4

/** How long a paid stream waits for the voucher of the readings it sent before it closes, ms (default). */
const STREAM_PAYMENT_WAIT_MS = 60_000

/** Settled epochs looked at for each validator's agreement with the quorum. */
const LIVENESS_WINDOW = 20

const toJson = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v))) as unknown

/**
 * The network's read API (steps 1 and 7 of the mission): status, devices, validators, settled
 * epochs; accepted readings (`/v1/readings`) and area/time aggregates (`/v1/aggregate`), every
 * reading with its Merkle proof against the readings root the chain settled; and each account's
 * cumulative rewards with the proof the RewardDistributor accepts. Amounts are decimal strings.
 */
export async function createApiServer(options: CreateApiServerOptions): Promise<ApiServer> {
  const { deployment, indexer, rewards, blueprint, paywall } = options
  const metrics = options.metrics ?? options.context?.metrics ?? createMetrics('api')
  const server = createJsonServer(64 * 1024, metrics)
  registerIndexerMetrics(metrics, indexer, deployment)
  // every request counts against its IP; a signed-in consumer's also against the consumer (many
  // wallets behind one IP share the IP's budget, one wallet over many IPs its own)
  const perIp = options.rateLimit?.perIp ?? 200
  const perConsumer = options.rateLimit?.perConsumer ?? 50
  const consumerOf = (request: FastifyRequest) =>
    request.headers.authorization ? paywall?.consumerOf(request.headers.authorization) : undefined
  const rateLimited = (what: string) => (_request: FastifyRequest, context: { max: number; after: string }) =>
    Object.assign(
      new DepinError(
        'RATE_LIMITED',
        `more than ${context.max} requests a second from this ${what}; retry in ${context.after}`,
        { details: { max: context.max }, retryable: true },
      ),
      { statusCode: 429 },
    )
  await server.register(rateLimit, {
    global: true,
    timeWindow: 1000,
    max: perIp,
    keyGenerator: (request) => `ip ${request.ip}`,
    errorResponseBuilder: rateLimited('address'),
  })
  if (paywall) {
    // createRateLimit, not rateLimit: the plugin runs one of its handlers per request, and the
    // IP's must run for every request
    const consumerLimit = server.createRateLimit({
      timeWindow: 1000,
      max: perConsumer,
      keyGenerator: (request) => `consumer ${consumerOf(request)?.toLowerCase()}`,
    })
    server.addHook('onRequest', async (request) => {
      if (consumerOf(request) === undefined) return
      const limit = await consumerLimit(request)
      if (!limit.isAllowed && limit.isExceeded)
        throw rateLimited('consumer')(request, { max: limit.max, after: `${limit.ttlInSeconds} seconds` })
    })
  }
  serveMetrics(server, metrics) // behind the address's limit
  const routes: string[] = []
  server.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1/') && route.method === 'GET') routes.push(route.url)
  })
  const keccak = await loadKeccak256()
  const useCase = useCaseOf(blueprint)
  const prover = createReadingProver({ store: rewards, indexer, keccak, kinds: useCase.recordKinds })
  const receiptProver = createReceiptProver({ store: rewards, indexer, keccak })
  const receiptNames = {
    reasons: rejectReasonsOf(useCase),
    unitNames: useCase.unitNames,
    symbol: blueprint.token.symbol,
  }
  const invalidQuery = (reply: FastifyReply, error: z.ZodError) => {
    const issue = error.issues[0]
    return reply.status(400).send({
      error: {
        code: 'INVALID_QUERY',
        message: `${issue?.path.join('.') || 'query'}: ${issue?.message ?? 'invalid'}`,
        details: { issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
      },
    })
  }
  let cachedTree:
    | {
        epoch: bigint
        rewardsRoot: `0x${string}`
        tree: RewardsTree | undefined
        cumulative: Map<string, bigint>
      }
    | undefined

  /** The rewards tree of the latest settled epoch, when the store holds that epoch's result. */
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
        rewardsRoot: settled.rewardsRoot,
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
      rpcUrl: options.rpcUrl ?? null,
      contracts: deployment.contracts,
      epochLength: deployment.epochLength,
      // the rules every report names (the blueprint's, pinned in the EpochManager)
      useCase: blueprint.useCase,
      rulesHash: blueprint.rulesHash,
      // what its devices sign: each kind's EIP-712 fields (after device, seq, time)
      recordKinds: useCase.recordKinds,
      dashboardPanel: useCase.dashboardPanel ? '/dashboard/panel.js' : null,
      currentEpoch: runningEpoch(now, deployment),
      lastSettledEpoch: epochs[0] ?? null,
      devices: indexer.deviceCount(),
      validators: indexer.validators().filter((v) => v.status === 'active').length,
      // the registry's gateway list as of the last indexed block
      gateways: indexer.gateways(),
      indexedBlock: lastProcessed?.block ?? null,
      // where and what this API charges (null: everything is free)
      market: paywall
        ? {
            market: paywall.domain.market,
            provider: paywall.provider,
            prices: paywall.prices,
            signIn: '/v1/market/nonce',
          }
        : null,
    })
  })
  server.get('/v1/epochs', async (request, reply) => {
    const query = epochsQuerySchema.safeParse(request.query)
    if (!query.success) return invalidQuery(reply, query.error)
    return toJson({ epochs: indexer.epochs(query.data.limit) })
  })
  server.get('/v1/devices', async (request, reply) => {
    const query = devicesQuerySchema.safeParse(request.query)
    if (!query.success) return invalidQuery(reply, query.error)
    const { owner, limit, offset } = query.data
    return toJson({
      devices: indexer.listDevices({ ...(owner ? { owner: getAddress(owner) } : {}), limit, offset }),
    })
  })
  server.get('/v1/validators', async () => {
    // liveness and agreement, from the chain alone: which of the last settled reports each signed
    const recent = indexer.epochs(LIVENESS_WINDOW)
    const lastSettled = recent[0]?.epoch
    const endpoints = new Map(indexer.validatorEndpoints().map((e) => [e.validator.toLowerCase(), e.url]))
    // what the validators saw signed for those epochs, to tell apart a validator whose signature
    // the leader left out from one that signed another report, and from one that said nothing
    const seen = rewards.seenReports(recent.at(-1)?.epoch ?? 0n)
    const settledDigest = (e: (typeof recent)[number]) =>
      hashEpochReport(deployment.chainId, deployment.contracts.epochManager, {
        epoch: e.epoch,
        // the only rules the EpochManager accepts: the blueprint's, pinned at deployment
        rulesHash: blueprint.rulesHash,
        readingsRoot: e.readingsRoot,
        rewardsRoot: e.rewardsRoot,
        receiptsRoot: e.receiptsRoot,
        total: e.total,
        accepted: e.accepted,
      })
    return toJson({
      window: recent.length,
      lastSettledEpoch: lastSettled ?? null,
      validators: indexer.validators().map((v) => {
        const address = v.validator.toLowerCase()
        const signed = recent.filter((e) => e.signers.some((s) => s.toLowerCase() === address))
        const missed = { notIncluded: 0, signedOther: 0, silent: 0 }
        for (const e of recent) {
          if (e.signers.some((s) => s.toLowerCase() === address)) continue
          const digests = seen.get(e.epoch)?.get(address)
          if (digests?.has(settledDigest(e))) missed.notIncluded++
          else if (digests && digests.size > 0) missed.signedOther++
          else missed.silent++
        }
        const lastSigned = indexer
          .epochs()
          .find((e) => e.signers.some((s) => s.toLowerCase() === v.validator.toLowerCase()))?.epoch
        return {
          ...v,
          /** Where its peers reach it, as it advertised on-chain (active validators only). */
          endpoint: endpoints.get(v.validator.toLowerCase()) ?? null,
          lastSignedEpoch: lastSigned ?? null,
          signedRecent: signed.length,
          /**
           * Of the last settled reports it is not among the signers of: how many it had signed
           * (the leader left its signature out), how many it signed differently, how many it was
           * not seen to sign at all (as far as the validator serving this API saw).
           */
          missedRecent: missed,
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
    // the proof is against the root of `epoch`: the claim names that epoch, and the distributor
    // keeps accepting it while the root is among its last ROOT_RING_SIZE
    return toJson({
      account,
      epoch: settled?.epoch ?? null,
      rewardsRoot: settled?.rewardsRoot ?? null,
      cumulativeAmount,
      claimed,
      claimable: cumulativeAmount - claimed,
      proof: cumulativeAmount > 0n ? (settled?.tree?.getProof(account) ?? null) : null,
    })
  })

  server.get<{ Params: { device: string } }>('/v1/devices/:device/receipts', async (request, reply) => {
    if (!isAddress(request.params.device)) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_ADDRESS', message: 'not an address', details: {} } })
    }
    const query = receiptsQuerySchema.safeParse(request.query)
    if (!query.success) return invalidQuery(reply, query.error)
    const device = getAddress(request.params.device)
    const { receipts, unverifiable } = receiptProver.proveDevice(device, query.data.limit, query.data.before)
    const usage = rewards.usageOf(
      device,
      receipts.map((r) => r.receipt.epoch),
    )
    // each receipt is a leaf of OpenZeppelin's StandardMerkleTree over leafTypes, proven against
    // the receipts root its epoch's ReportAccepted event carries (quorum-signed with the report)
    return toJson({
      device,
      registered: indexer.getDevice(device) !== undefined,
      leafTypes: RECEIPT_LEAF_TYPES,
      reasons: receiptNames.reasons,
      unitNames: receiptNames.unitNames,
      receipts: receipts.map(({ receipt, proof, receiptsRoot }) => ({
        epoch: receipt.epoch,
        receipt: receiptToJson(receipt),
        rejectedByReason: rejectedByReason(receipt, receiptNames),
        units: unitsByName(receipt, receiptNames),
        explanation: describeReceipt(receipt, receiptNames),
        // consumers' fees the epoch credited to the owner through this device (not in the leaf)
        usageFee: usage.get(receipt.epoch) ?? 0n,
        receiptsRoot,
        proof,
      })),
      unverifiable,
    })
  })

  const { areaOf, devicesIn } = createDeviceLocator(indexer)

  // accepted readings with their proofs against the settled readings roots
  server.get('/v1/readings', async (request, reply) => {
    const query = readingsQuerySchema.safeParse(request.query)
    if (!query.success) return invalidQuery(reply, query.error)
    const ticket = paywall?.guard(request, reply, { item: 'reading', maxReadings: query.data.limit })
    if (paywall && !ticket) return reply
    const { device, limit } = query.data
    const { from, to } = windowOf(query.data)
    const found = rewards.acceptedReadings({
      from,
      to,
      limit,
      ...(device ? { devices: [device.toLowerCase()] } : {}),
    })
    const proven = prover.prove(found)
    if (
      ticket &&
      !(await paywall?.charge(request, reply, ticket, { item: 'reading', readings: proven.readings }))
    )
      return reply
    return toJson({ from, to, ...proven })
  })
  paywall?.register(server)
  // what a consumer paid, from the chain alone (its redemptions, as this API's indexer saw them)
  server.get<{ Params: { consumer: string } }>('/v1/market/consumers/:consumer', async (request, reply) => {
    if (!isAddress(request.params.consumer)) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_ADDRESS', message: 'not an address', details: {} } })
    }
    const consumer = getAddress(request.params.consumer)
    const redemptions = indexer.redemptions(consumer)
    return toJson({
      consumer,
      market: deployment.contracts.dataMarket,
      spent: redemptions.reduce((sum, r) => sum + r.amount, 0n),
      // per provider, its latest redemption's count: what the consumer paid it for in all
      readingsPaidFor: Object.fromEntries(redemptions.map((r) => [r.provider, r.servedCount])),
      redemptions: redemptions.slice(-500),
    })
  })

  // free, even where /v1/readings is paid: a device's newest few readings settled at least
  // `previewDelaySeconds` ago (the dashboard's device panel), each with its proof; live data is
  // what the market sells, so where it is priced the preview is delayed, and limited apart
  const previewDelay = BigInt(paywall ? (options.previewDelaySeconds ?? 3_600) : 0)
  server.get<{ Params: { device: string } }>(
    '/v1/devices/:device/latest',
    { config: { rateLimit: { max: Math.max(1, Math.floor(perIp / 20)), timeWindow: 1000 } } },
    async (request, reply) => {
      if (!isAddress(request.params.device)) {
        return reply
          .status(400)
          .send({ error: { code: 'INVALID_ADDRESS', message: 'not an address', details: {} } })
      }
      const query = previewQuerySchema.safeParse(request.query)
      if (!query.success) return invalidQuery(reply, query.error)
      const before = BigInt(Math.floor(Date.now() / 1000)) - previewDelay
      const found = rewards.acceptedReadings({
        from: 0n,
        to: before + 1n,
        limit: query.data.limit,
        devices: [request.params.device.toLowerCase()],
        newest: true,
      })
      return toJson({
        device: getAddress(request.params.device),
        paid: paywall !== undefined,
        delaySeconds: previewDelay,
        ...prover.prove(found),
      })
    },
  )

  // the use case's own delivery routes (the environment: /v1/aggregate)
  const useCaseApi: UseCaseApi = {
    server,
    blueprint,
    locate: { areaOf, devicesIn },
    acceptedReadings: (query) => rewards.acceptedReadings(query),
    prove: (found) => prover.prove(found),
    epochReceipts: (epoch) => receiptProver.proveEpoch(epoch),
    settledEpochs: (limit) => indexer.epochs(limit),
    device: (address) => indexer.getDevice(address),
    invalidQuery,
    toJson,
    ...(paywall ? { pay: paywall } : {}),
  }
  for (const route of useCase.routes ?? []) route.register(useCaseApi)

  const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version
  server.get('/v1/openapi.json', async () =>
    openApiDocument(version, useCase, { market: paywall !== undefined }),
  )

  // the dashboard (web/): static files, and the map it draws
  let baseMap: string | undefined
  server.get('/v1/map', async () => {
    baseMap ??= projectBaseMap()
    return toJson({
      width: MAP_WIDTH,
      height: MAP_HEIGHT,
      projection: { type: 'equirectangular', unitsPerDegree: MAP_WIDTH / 360 },
      land: baseMap,
      classes: blueprint.deviceClasses.map((c) => ({
        id: c.id,
        name: c.name,
        fields: c.fields.map((f) => ({ name: f.name, unit: f.unit, scale: f.scale })),
      })),
      devices: indexer.listDevices().flatMap((d) => {
        const cell = d.h3Cell.toString(16)
        if (!isValidCell(cell)) return []
        const [lat, lng] = cellToLatLng(cell)
        return [{ ...d, h3Cell: cell, lat, lng, ...projectPoint(lat, lng) }]
      }),
    })
  })
  server.get('/', async (_request, reply) => reply.redirect('/dashboard/'))
  // each file read once, on its first request
  const staticFile = (path: string, type: string, file: () => string | URL) => {
    let bytes: Buffer | undefined
    server.get(path, async (_request, reply) => {
      bytes ??= readFileSync(file())
      return reply.header('content-type', type).header('cache-control', 'no-cache').send(bytes)
    })
  }
  // keccak-256 for the browser's own proof checks: hash-wasm's standalone build, as npm ships it
  staticFile('/dashboard/vendor/keccak.js', 'text/javascript; charset=utf-8', () =>
    join(dirname(createRequire(import.meta.url).resolve('hash-wasm')), 'keccak.umd.min.js'),
  )
  // uPlot for the dashboard's charts, its browser build as npm ships it
  for (const [name, file, type] of [
    ['uplot.js', 'uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
    ['uplot.css', 'uPlot.min.css', 'text/css; charset=utf-8'],
  ] as const) {
    staticFile(`/dashboard/vendor/${name}`, type, () =>
      join(dirname(createRequire(import.meta.url).resolve('uplot')), file),
    )
  }
  // the use case's own panel, from its folder
  const panel = useCase.dashboardPanel
  if (panel) staticFile('/dashboard/panel.js', 'text/javascript; charset=utf-8', () => panel)
  for (const [name, type] of DASHBOARD_FILES) {
    staticFile(
      name === 'index.html' ? '/dashboard/' : `/dashboard/${name}`,
      type,
      () => new URL(`../../web/${name}`, import.meta.url),
    )
  }

  // a live stream (server-sent events) of settled epochs, and of the readings they accepted from
  // a device or an area, each with its proof; resumes after `since` or the Last-Event-ID
  const streams = new Set<() => void>()
  /** Open streams per holder (`ip …`, `consumer …`). */
  const openStreams = new Map<string, number>()
  // a stream answers for as long as it is open: its lifetime is no request latency, it is not timed
  server.get('/v1/stream', { config: { timed: false } }, async (request, reply) => {
    const lastEventId = request.headers['last-event-id']
    const query = streamQuerySchema.safeParse({
      ...(request.query as object),
      ...(typeof lastEventId === 'string' && /^\d+$/.test(lastEventId) ? { since: lastEventId } : {}),
    })
    if (!query.success) return invalidQuery(reply, query.error)
    const { device, since } = query.data
    const hasArea = query.data.cell !== undefined || query.data.lat !== undefined
    const area = hasArea ? areaOf(query.data) : undefined
    if (area?.type === 'invalid') return reply.status(400).send(area.body)
    const classId = query.data.class ?? blueprint.deviceClasses[0]?.id ?? 0
    const devicesOf = (): string[] | undefined =>
      device ? [device.toLowerCase()] : area ? devicesIn(area, classId) : undefined

    // a device's or an area's readings are paid per streamed reading where the API is a provider;
    // the epochs alone stay free
    const ticket =
      paywall && devicesOf() !== undefined
        ? paywall.guard(request, reply, { item: 'streamedReading', maxReadings: MAX_STREAM_READINGS })
        : undefined
    if (paywall && devicesOf() !== undefined && !ticket) return reply
    // open streams hold a connection and a poll each: a few per consumer, more per IP
    const holders = [`ip ${request.ip}`, ...(ticket ? [`consumer ${ticket.consumer.toLowerCase()}`] : [])]
    const full = holders.find(
      (h) =>
        (openStreams.get(h) ?? 0) >= (h.startsWith('ip') ? MAX_STREAMS_PER_IP : MAX_STREAMS_PER_CONSUMER),
    )
    if (full) {
      return reply.status(429).send({
        error: {
          code: 'STREAMS_LIMIT',
          message: `too many open streams for this ${full.startsWith('ip') ? 'address' : 'consumer'}: close one first`,
          details: { max: full.startsWith('ip') ? MAX_STREAMS_PER_IP : MAX_STREAMS_PER_CONSUMER },
        },
      })
    }
    for (const h of holders) openStreams.set(h, (openStreams.get(h) ?? 0) + 1)
    const release = () => {
      for (const h of holders) {
        const left = (openStreams.get(h) ?? 1) - 1
        if (left > 0) openStreams.set(h, left)
        else openStreams.delete(h)
      }
    }
    if (ticket && paywall) {
      let opened = false
      try {
        opened = await paywall.openStream(request, reply, ticket)
      } finally {
        if (!opened) release() // refused, or the store failed: the slot is free again
      }
      if (!opened) return reply
      // the client hung up while the ticket was being recorded: nothing to stream to
      if (request.raw.destroyed) {
        release()
        return reply
      }
    }

    reply.hijack()
    const out = reply.raw
    out.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    })
    const send = (event: string, data: unknown, id?: bigint) =>
      out.write(
        `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(toJson(data))}\n\n`,
      )
    out.write('retry: 2000\n\n')
    let closed = false
    let next = since !== undefined ? since + 1n : (indexer.epochs(1)[0]?.epoch ?? -1n) + 1n
    /** When this stream's last part was charged, while its voucher is not in (ms). */
    let chargedAt: number | undefined
    let askedForVoucher = false
    /** A part charged and not paid for within STREAM_PAYMENT_WAIT_MS closes the stream. */
    const paymentOverdue = (): boolean => {
      if (!ticket || !paywall || chargedAt === undefined) return false
      if (paywall.settles(ticket.consumer)) {
        chargedAt = undefined
        return false
      }
      if (Date.now() - chargedAt <= (options.streamPaymentTimeoutMs ?? STREAM_PAYMENT_WAIT_MS)) return false
      send('error', {
        code: 'PAYMENT_TIMEOUT',
        message: 'no voucher for the last readings sent: stream closed',
      })
      close()
      return true
    }
    /**
     * Charges a paid stream's next part; false when it must wait (the voucher of the last part is
     * not in yet: asked for once with a `payment-required` event) or ends (its deposit is spent).
     */
    const pay = async (readings: Parameters<Paywall['chargeStream']>[1]): Promise<boolean> => {
      if (!ticket || !paywall || readings.length === 0) return true
      const charged = await paywall.chargeStream(ticket.consumer, readings)
      if (closed) return false
      if (charged.type === 'charged') {
        chargedAt = Date.now()
        askedForVoucher = false
        send('payment', charged.payment)
        return true
      }
      if (charged.type === 'refused') {
        send('error', { code: charged.code, message: charged.message })
        close()
        return false
      }
      if (!askedForVoucher) {
        askedForVoucher = true
        send('payment-required', {
          message: 'sign the voucher for what this stream sent, and POST it to /v1/market/vouchers',
          voucher: charged.voucher,
        })
      }
      return false
    }
    const tick = async () => {
      if (paymentOverdue()) return
      const newest = indexer.epochs(1)[0]?.epoch
      if (newest === undefined || newest < next) return
      // newest first: the epochs at or after `next` are among the newest (newest − next + 1)
      const settled = indexer
        .epochs(Number(newest - next + 1n))
        .filter((e) => e.epoch >= next)
        .reverse()
        .slice(0, STREAM_EPOCHS_PER_TICK)
      const devices = devicesOf()
      for (const epoch of settled) {
        if (!devices) {
          send('epoch', epoch, epoch.epoch)
          next = epoch.epoch + 1n
          continue
        }
        const found = rewards.acceptedReadings({
          from: 0n,
          to: 1n << 62n,
          epoch: epoch.epoch,
          devices,
          limit: MAX_STREAM_READINGS,
        })
        const proven = prover.prove(found)
        // a paid part is charged before it is sent: its epoch, its price, then its readings
        if (!(await pay(proven.readings))) return
        send('epoch', epoch, epoch.epoch)
        for (const reading of proven.readings) send('reading', reading)
        if (proven.unverifiable.length > 0) send('unverifiable', { epoch: epoch.epoch })
        next = epoch.epoch + 1n
      }
    }
    // a tick that fails (a store error) tells the client, closes its stream and is reported: the
    // client reconnects with Last-Event-ID and resumes where it was
    let ticking = false
    const guardedTick = () => {
      if (ticking || closed) return
      ticking = true
      tick()
        .catch((error: unknown) => {
          if (options.onError) options.onError({ code: 'STREAM_TICK_FAILED', error })
          else options.context?.report('STREAM_TICK_FAILED', error)
          if (closed) return
          send('error', { code: 'STREAM_TICK_FAILED', message: 'the stream stopped; reconnect to resume' })
          close()
        })
        .finally(() => {
          ticking = false
        })
    }
    const polling = setInterval(guardedTick, 1_000)
    const keepAlive = setInterval(() => out.write(': keep-alive\n\n'), 15_000)
    const close = () => {
      if (closed) return
      closed = true
      release()
      clearInterval(polling)
      clearInterval(keepAlive)
      streams.delete(close)
      out.end()
    }
    streams.add(close)
    request.raw.on('close', close)
    guardedTick()
  })

  let url = ''
  return {
    server,
    routes,
    get url() {
      return url
    },
    async start() {
      url = await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
    },
    async stop() {
      for (const close of [...streams]) close()
      await server.close()
    },
  }
}
