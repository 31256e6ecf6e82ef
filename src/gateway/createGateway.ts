import { availableParallelism } from 'node:os'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type Address, bytesToHex, type Hex } from 'viem'
import { createJsonServer, errorAnswerOf, serveMetrics } from '../api/createJsonServer.ts'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import type { Deployment } from '../chain/deployment.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import type { Context } from '../protocol/context.ts'
import { createSerialLane } from '../protocol/createSerialLane.ts'
import { createMetrics, type Metrics } from '../protocol/metrics.ts'
import { createReadingHasher } from '../readings/createReadingHasher.ts'
import { createVerdictHasher } from '../readings/createVerdictHasher.ts'
import {
  type ReadingVerdictEntry,
  UNPARSED_READING,
  type VerdictSignature,
  verdictStatusOf,
} from '../readings/gatewayVerdict.ts'
import { INT64_MAX, type SignedReading } from '../readings/reading.ts'
import { type DigestSigner, signGatewayVerdict } from '../readings/signGatewayVerdict.ts'
import { useCaseOf } from '../usecases/registry.ts'
import {
  checkReadingSignatures,
  SIGNATURE_OUTCOMES,
  type SignatureOutcome,
} from '../validator/judge/checkReadingSignatures.ts'
import { createSignatureCheckPool } from '../validator/judge/createSignatureCheckPool.ts'
import { encodeBatch } from './batchFormat.ts'
import { checkReadings, type DeviceLookup, parseReadings, type ReadingVerdict } from './checkReadings.ts'
import { openGatewayStore } from './gatewayStore.ts'

export type CreateGatewayOptions = {
  blueprint: Blueprint
  deployment: Deployment
  devices: DeviceLookup
  /** Its store: a SQLite file, or a `postgres://…?schema=…` URL (see `parseDatabaseTarget`). */
  database: string
  host?: string
  /** 0 (default) takes a free port. */
  port?: number
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number
  /** Most readings in one request (default 1,000). */
  maxBatch?: number
  /** Unix seconds; defaults to the system clock. */
  clock?: () => bigint
  /** Milliseconds between checks for epochs to seal (default 250). */
  sealIntervalMs?: number
  onSealed?: (batch: { epoch: bigint; hash: Hex; count: number }) => void
  /** Worker threads checking signatures (default: one per core; 0 checks on the main thread). */
  signatureThreads?: number
  /**
   * The gateway operator's key (its address is the gateway's id on the registry's list). It signs
   * every answer (`GatewayVerdict`, see `src/readings/gatewayVerdict.ts`); without it answers go
   * unsigned, and devices, which drop a reading only on a listed gateway's signed verdict, keep
   * theirs queued.
   */
  operator?: DigestSigner
  /**
   * Told of every failure the gateway carries on after (default: a JSON line on stderr): a
   * request it could not store (`INGEST_FAILED`, answered 503 so the sender keeps its readings),
   * an epoch it could not seal (`EPOCH_SEAL_FAILED`, tried again on the next tick; reported at
   * most every 30 s while it lasts).
   */
  onError?: (event: GatewayErrorEvent) => void
  /** The process's context: without `onError`, failures are reported through it. */
  context?: Context
  /** Where its metrics go, served at GET /metrics (default: the context's, else its own). */
  metrics?: Metrics
}

/** A failure the gateway reported and carried on after. */
export type GatewayErrorEvent = {
  code: 'INGEST_FAILED' | 'EPOCH_SEAL_FAILED'
  message: string
  error: unknown
}

/** Reports a gateway failure as one JSON line on stderr (the default of `onError`). */
export const logGatewayError = (event: { code: string; message: string }) =>
  console.error(JSON.stringify({ event: 'error', code: event.code, message: event.message }))

export type Gateway = {
  start(): Promise<void>
  stop(): Promise<void>
  /** Base URL once started, e.g. http://127.0.0.1:43121 */
  readonly url: string
  readonly server: FastifyInstance
  /** Seals every closed epoch not sealed yet (also runs on a timer). Resolves to the epochs sealed. */
  sealClosedEpochs(): Promise<bigint[]>
  /**
   * Checks a batch `{ readings: [...] }` and stores the accepted readings, durably, before it
   * returns: what `POST /v1/readings` and the MQTT ingest both answer with. Never throws for bad
   * input (it throws when the store fails). Given `request`, the keccak-256 of the request's
   * bytes, and an `operator` key, the answer is signed over it (`request`, `gateway`,
   * `signature` in the body).
   */
  ingest(body: unknown, options?: { request?: Hex | undefined; transport?: Transport }): Promise<IngestAnswer>
  /** Counts a batch a transport refused before it reached `ingest` (too large, not JSON, no id). */
  countRefused(transport: Transport, code: string): void
  /** Readings accepted since start, and the running totals of rejections by reason. */
  stats(): { accepted: number; duplicates: number; rejected: Record<string, number> }
}

/** How a batch reached the gateway (a label of its metrics). */
export type Transport = 'http' | 'mqtt'

/** The signature fields of an answer, when the gateway signed it. */
type MaybeSigned = Partial<VerdictSignature>

/**
 * A gateway's answer to a batch of readings, with the HTTP status it is sent with. Signed
 * (`request`, `gateway`, `signature`) when the gateway has an operator key and knows the
 * request's bytes; a 503 (the store failed) never is: it drops nothing.
 */
export type IngestAnswer =
  | { status: 200; body: { results: ReadingVerdict[]; accepted: number; rejected: number } & MaybeSigned }
  | {
      status: 400 | 413 | 503
      body: { error: { code: string; message: string; details: Record<string, unknown> } } & MaybeSigned
    }

/** A refusal of a whole batch, as `ingest` answers it (the MQTT ingest answers with these too). */
export const refusal = (
  status: 400 | 413 | 503,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
): IngestAnswer => ({ status, body: { error: { code, message, details } } })

const systemClock = () => BigInt(Math.floor(Date.now() / 1000))

/**
 * The ingest gateway. `POST /v1/readings` takes `{ readings: [...] }` and answers per reading
 * accepted or rejected with a machine-readable reason, only after the accepted ones are durable
 * in SQLite. Each closed epoch (end + sealDelay passed) is sealed into a content-addressed batch
 * that validators fetch: `GET /v1/batches/:epoch`, `GET /v1/batches/by-hash/:hash`, `GET /v1/batches`.
 * A request that is not a batch at all (bad JSON, wrong shape, too large) gets a 4xx
 * `{ error: { code, message, details } }` and changes nothing.
 */
export async function createGateway(options: CreateGatewayOptions): Promise<Gateway> {
  const { blueprint, deployment, devices } = options
  const clock = options.clock ?? systemClock
  const maxBatch = options.maxBatch ?? 1_000
  const keccak = await loadKeccak256()
  // every kind of record the network's use case has, hashed and parsed alike
  const { recordKinds } = useCaseOf(blueprint)
  const digest = await createReadingHasher(
    deployment.chainId,
    deployment.contracts.deviceRegistry,
    recordKinds,
  )
  const hashVerdict = await createVerdictHasher(deployment.chainId, deployment.contracts.deviceRegistry)
  const { operator } = options
  const onError =
    options.onError ??
    (options.context
      ? (event: GatewayErrorEvent) =>
          options.context?.logger.error({ event: 'error', code: event.code, message: event.message })
      : logGatewayError)
  const store = await openGatewayStore(options.database)
  const threads = options.signatureThreads ?? availableParallelism()
  const pool =
    threads > 0
      ? createSignatureCheckPool({
          chainId: deployment.chainId,
          deviceRegistry: deployment.contracts.deviceRegistry,
          kinds: recordKinds,
          threads,
        })
      : undefined
  const lastAccepted = await store.lastAccepted()
  const { genesisTime, epochLength } = deployment
  const sealDelay = BigInt(blueprint.epochs.sealDelaySeconds)
  const epochOf = (time: bigint) => (time < genesisTime ? -1n : (time - genesisTime) / epochLength)

  // Epochs before the first start of this gateway are sealed (as nothing) from the outset.
  let sealedThrough = await store.lastSealedEpoch()
  if (sealedThrough === undefined) {
    const firstEpoch = BigInt((await store.getMeta('first_epoch')) ?? epochOf(clock()).toString())
    await store.setMeta('first_epoch', firstEpoch.toString())
    sealedThrough = firstEpoch - 1n
  }
  const inLane = createSerialLane()
  const stats = { accepted: 0, duplicates: 0, rejected: {} as Record<string, number> }

  const metrics = options.metrics ?? options.context?.metrics ?? createMetrics('gateway')
  const server = createJsonServer(options.bodyLimit ?? 1024 * 1024, metrics) // readings are JSON only
  serveMetrics(server, metrics)
  const readingsAccepted = metrics.counter(
    'depin_gateway_readings_accepted_total',
    'Readings accepted and stored (duplicates of stored ones included), by transport',
    ['transport'],
  )
  const readingsRejected = metrics.counter(
    'depin_gateway_readings_rejected_total',
    'Readings rejected, by transport and reason',
    ['transport', 'reason'],
  )
  const batchesRefused = metrics.counter(
    'depin_gateway_batches_refused_total',
    'Whole batches refused (nothing of them checked or stored), by transport and code',
    ['transport', 'code'],
  )
  metrics.gauge('depin_gateway_sealed_epoch', 'Last epoch the gateway sealed into a batch', [], (gauge) => {
    if (sealedThrough !== undefined && sealedThrough >= 0n) gauge.set(Number(sealedThrough))
  })
  // JSON as fastify parses it, and the keccak-256 of the bytes as received, which the answer's
  // signature covers (a signed answer holds for exactly the request it answers)
  const requestHashes = new WeakMap<FastifyRequest, Hex>()
  const parseJson = server.getDefaultJsonParser('error', 'error')
  server.removeContentTypeParser('application/json')
  server.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer
    requestHashes.set(request, bytesToHex(keccak(bytes)))
    parseJson(request, bytes.toString('utf8'), done)
  })

  /** Signs an answer when the gateway has a key and knows the request's bytes. */
  async function signed<T extends IngestAnswer>(
    answer: T,
    request: Hex | undefined,
    readings: ReadingVerdictEntry[] = [],
  ): Promise<T> {
    if (!operator || request === undefined) return answer
    const code = 'error' in answer.body ? answer.body.error.code : ''
    const verdict = { request, status: answer.status, code, readings }
    return {
      ...answer,
      body: { ...answer.body, ...(await signGatewayVerdict({ operator, hash: hashVerdict, verdict })) },
    }
  }

  /** ingestBatch, counted in the metrics. */
  async function ingest(
    body: unknown,
    { request, transport = 'http' }: { request?: Hex | undefined; transport?: Transport } = {},
  ): Promise<IngestAnswer> {
    let answer: IngestAnswer
    try {
      answer = await ingestBatch(body, request, transport)
    } catch (error) {
      batchesRefused.inc({ transport, code: 'INGEST_FAILED' }) // the caller answers 503
      throw error
    }
    if ('error' in answer.body) batchesRefused.inc({ transport, code: answer.body.error.code })
    return answer
  }

  /** Checks a batch of readings and stores the accepted ones: the body of `POST /v1/readings`. */
  async function ingestBatch(
    body: unknown,
    request: Hex | undefined,
    transport: Transport,
  ): Promise<IngestAnswer> {
    const readingsJson = (body as { readings?: unknown } | null)?.readings
    if (typeof body !== 'object' || body === null || !Array.isArray(readingsJson)) {
      return signed(
        refusal(400, 'INVALID_BODY', 'the body must be a JSON object { "readings": [ … ] }'),
        request,
      )
    }
    if (readingsJson.length === 0 || readingsJson.length > maxBatch) {
      return signed(
        refusal(
          readingsJson.length === 0 ? 400 : 413,
          readingsJson.length === 0 ? 'BATCH_EMPTY' : 'BATCH_TOO_LARGE',
          `a batch holds 1 to ${maxBatch} readings, this one ${readingsJson.length}`,
          { maxBatch, received: readingsJson.length },
        ),
        request,
      )
    }
    const batch = parseReadings(readingsJson, recordKinds)
    const readings = batch.parsed.map((p) => p.reading)
    // signatures in parallel on the worker threads; everything after runs in the store's lane, so
    // two requests (HTTP or MQTT) never interleave between the replay check and the write, and
    // no epoch is sealed between them
    const checks = pool ? await pool.check(readings) : checkReadingSignatures(readings, digest, keccak)
    return inLane(() => judgeAndStore(batch, readingsJson.length, checks.outcomes, request, transport))
  }

  /** The replay and epoch checks, the durable write and the answer: always run in the lane. */
  async function judgeAndStore(
    batch: ReturnType<typeof parseReadings>,
    size: number,
    outcomes: ArrayLike<number>,
    request: Hex | undefined,
    transport: Transport,
  ): Promise<IngestAnswer> {
    const signatures = new Map(
      batch.parsed.map(({ index }, i) => [
        index,
        SIGNATURE_OUTCOMES[outcomes[i] as number] as SignatureOutcome,
      ]),
    )
    const { verdicts, accepted } = checkReadings(
      { ...batch, size },
      {
        blueprint,
        devices,
        signatures,
        lastAccepted,
        now: clock(),
        genesisTime,
        epochLength,
        sealedThrough,
      },
    )
    if (accepted.length > 0) await store.append(accepted) // durable before we answer
    for (const { reading } of accepted) {
      lastAccepted.set(reading.device.toLowerCase(), { seq: reading.seq, signature: reading.signature })
    }
    let acceptedCount = 0
    const rejectedBy = new Map<string, number>()
    for (const v of verdicts) {
      if (v.status === 'accepted') {
        acceptedCount++
        if (v.duplicate) stats.duplicates++
      } else rejectedBy.set(v.reason, (rejectedBy.get(v.reason) ?? 0) + 1)
    }
    // the metrics once per reason and batch, not once per reading
    for (const [reason, n] of rejectedBy) {
      stats.rejected[reason] = (stats.rejected[reason] ?? 0) + n
      readingsRejected.inc({ transport, reason }, n)
    }
    if (acceptedCount > 0) readingsAccepted.inc({ transport }, acceptedCount)
    stats.accepted += accepted.length
    const answer: IngestAnswer = {
      status: 200,
      body: { results: verdicts, accepted: acceptedCount, rejected: verdicts.length - acceptedCount },
    }
    return operator && request !== undefined
      ? signed(answer, request, verdictEntries(batch.parsed, verdicts))
      : answer
  }

  /** What the signature says of each reading: its device, seq and digest, and the verdict on it. */
  function verdictEntries(
    parsed: readonly { index: number; reading: SignedReading }[],
    verdicts: readonly ReadingVerdict[],
  ): ReadingVerdictEntry[] {
    const byIndex = new Map(parsed.map(({ index, reading }) => [index, reading]))
    return verdicts.map((verdict) => {
      const reading = byIndex.get(verdict.index)
      const what = reading
        ? { device: reading.device, seq: reading.seq, digest: bytesToHex(digest(reading)) }
        : UNPARSED_READING // failed the wire schema: nothing is known of it
      return { ...what, ...verdictStatusOf(verdict) }
    })
  }

  server.post(
    '/v1/readings',
    // a body fastify refuses before the handler (too large, not JSON, another media type) is counted too
    {
      onError: async (_request, _reply, error) =>
        batchesRefused.inc({ transport: 'http', code: errorAnswerOf(error).code }),
    },
    async (request, reply) => {
      let answer: IngestAnswer
      try {
        answer = await ingest(request.body, { request: requestHashes.get(request) })
      } catch (error) {
        answer = ingestFailed(error)
      }
      return reply.status(answer.status).send(answer.body)
    },
  )

  server.get('/v1/batches', async () => ({
    batches: (await store.batches()).map((b) => ({
      ...b,
      epoch: b.epoch.toString(),
      sealedAt: b.sealedAt.toString(),
    })),
  }))
  const sendBatch = (
    batch: Awaited<ReturnType<typeof store.batch>>,
    reply: import('fastify').FastifyReply,
    what: string,
  ) => {
    if (!batch) {
      return reply
        .status(404)
        .send({ error: { code: 'BATCH_NOT_FOUND', message: `no sealed batch ${what}`, details: {} } })
    }
    return reply
      .header('content-type', 'application/x-ndjson')
      .header('x-batch-hash', batch.hash)
      .header('x-batch-epoch', batch.epoch.toString())
      .send(Buffer.from(batch.bytes))
  }
  server.get<{ Params: { epoch: string } }>('/v1/batches/:epoch', async (request, reply) => {
    if (!/^\d{1,19}$/.test(request.params.epoch)) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_EPOCH', message: 'epoch must be an integer', details: {} } })
    }
    const epoch = BigInt(request.params.epoch)
    // past SQLite's integers no epoch is ever sealed (and the store could not be asked): none here
    const batch = epoch <= INT64_MAX ? await store.batch(epoch) : undefined
    return sendBatch(batch, reply, `for epoch ${request.params.epoch}`)
  })
  server.get<{ Params: { hash: string } }>('/v1/batches/by-hash/:hash', async (request, reply) => {
    if (!/^0x[0-9a-fA-F]{64}$/.test(request.params.hash)) {
      return reply
        .status(400)
        .send({ error: { code: 'INVALID_HASH', message: 'hash must be 0x + 64 hex', details: {} } })
    }
    return sendBatch(
      await store.batchByHash(request.params.hash as Hex),
      reply,
      `with hash ${request.params.hash}`,
    )
  })
  server.get('/v1/health', async () => ({ ok: true, sealedThrough: sealedThrough?.toString() ?? null }))

  /** Seals every closed epoch, in the lane: no ingest is between its check and its write meanwhile. */
  const sealClosedEpochs = () => inLane(sealClosed)
  async function sealClosed(): Promise<bigint[]> {
    const sealable = epochOf(clock() - sealDelay) - 1n // the last epoch whose end + delay has passed
    const sealed: bigint[] = []
    while (sealedThrough === undefined || sealedThrough < sealable) {
      const epoch = (sealedThrough ?? -1n) + 1n
      const batch = encodeBatch(keccak, epoch, await store.epochReadings(epoch))
      await store.saveBatch(batch, clock())
      sealedThrough = epoch
      sealed.push(epoch)
      options.onSealed?.({ epoch, hash: batch.hash, count: batch.count })
    }
    return sealed
  }

  /** A request the gateway could not store: reported, and answered 503, so the sender keeps it. */
  function ingestFailed(error: unknown): IngestAnswer {
    const message = error instanceof Error ? error.message : String(error)
    onError({ code: 'INGEST_FAILED', message: `could not check and store a batch: ${message}`, error })
    return refusal(503, 'INGEST_FAILED', 'the gateway could not store the readings; send them again later')
  }

  // the sealing timer never throws: a failure is reported (at most every 30 s while it lasts)
  // and the epoch is sealed on a later tick
  let lastSealFailure = 0
  let sealing: Promise<void> | undefined
  const sealOnTimer = async () => {
    try {
      await sealClosedEpochs()
      lastSealFailure = 0
    } catch (error) {
      if (Date.now() - lastSealFailure < 30_000) return
      lastSealFailure = Date.now()
      const message = error instanceof Error ? error.message : String(error)
      onError({ code: 'EPOCH_SEAL_FAILED', message: `could not seal the closed epochs: ${message}`, error })
    }
  }

  let timer: NodeJS.Timeout | undefined
  let url = ''
  return {
    server,
    get url() {
      return url
    },
    sealClosedEpochs,
    ingest,
    countRefused: (transport, code) => batchesRefused.inc({ transport, code }),
    stats: () => ({ ...stats, rejected: { ...stats.rejected } }),
    async start() {
      url = await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
      // a tick while the last one still seals (a slow store) is skipped, not queued
      timer = setInterval(() => {
        sealing ??= sealOnTimer().finally(() => {
          sealing = undefined
        })
      }, options.sealIntervalMs ?? 250)
    },
    async stop() {
      if (timer) clearInterval(timer)
      await server.close()
      await sealing
      await inLane(() => {}) // the last ingest's write
      await pool?.close()
      await store.close()
    },
  }
}

export type { Address }
