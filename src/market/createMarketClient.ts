/**
 * The consumer's side of the data market (an SDK entry point; `depin readings` and `depin
 * aggregate` pay through it): signs in with the wallet (SIWE), pays each priced request with a
 * voucher settling everything received before, and checks every answer before it signs for it —
 * each reading's proof against the readings root on-chain, the price against the network's prices,
 * the served commitment against its own. A consumer never signs for a reading it did not verify.
 *
 * The channel (what it owes the provider, its served commitment and count) is kept by the consumer
 * itself (`state`), not taken from the provider: a provider claiming more than the consumer
 * received gets a 402 loop, never a signature.
 */

import { EventSourceParserStream } from 'eventsource-parser/stream'
import { type Address, getAddress, type Hex, type LocalAccount, type PublicClient } from 'viem'
import { createSiweMessage } from 'viem/siwe'
import { MAX_STREAM_READINGS } from '../api/apiQueries.ts'
import { type ProvenReadingJson, verifyProvenReadings } from '../api/verifyProvenReadings.ts'
import type { Deployment } from '../chain/deployment.ts'
import { dataMarketAbi } from '../chain/generated/contracts.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { RecordKind } from '../readings/recordKinds.ts'
import { type MarketPrices, VOUCHER_SCHEME, X402_VERSION } from './createPaywall.ts'
import { extendServed, NOTHING_SERVED, signedVoucherToJson, signVoucher } from './voucher.ts'

/** The consumer's own record of its channel with one provider. */
export type ConsumerChannel = { provider: Address; owed: bigint; served: Hex; servedCount: bigint }

export type MarketClientState = {
  load(): ConsumerChannel | undefined
  save(channel: ConsumerChannel): void
}

export type CreateMarketClientOptions = {
  /** The API (a provider) to query, e.g. http://127.0.0.1:8080 */
  apiUrl: string
  /** The consumer's key: it signs in and signs the vouchers. */
  account: LocalAccount
  publicClient: PublicClient
  deployment: Pick<Deployment, 'chainId' | 'contracts'>
  /** The network's record kinds (its use case's), to recompute each reading's digest. */
  kinds?: readonly RecordKind[]
  /** Where the channel is kept between runs (default: in memory only). */
  state?: MarketClientState
  /**
   * Take the provider's word for the channel when it is ahead of ours (our record of one answer was
   * lost, e.g. a crash after it arrived): pays at most that answer unverified. Default false.
   */
  acceptProviderChannel?: boolean
  /**
   * The prices the consumer's own copy of the blueprint names: given, a provider asking other
   * prices is refused at sign-in (PRICE_MISMATCH), before anything is paid. Omitted, the prices
   * the provider advertises are taken, and every answer is still checked against them.
   */
  prices?: MarketPrices
  fetch?: typeof fetch
}

export class MarketClientError extends DepinError {}

/** What a paid answer cost, as the consumer checked it. */
export type PaidReceipt = { price: bigint; owed: bigint; servedCount: bigint }

type PaymentResponse = { price: string; cumulativeAmount: string; served: Hex; servedCount: string }

type MarketStatus = { market: Address; provider: Address; prices: Record<keyof MarketPrices, string> }

export function createMarketClient(options: CreateMarketClientOptions) {
  const { account, deployment } = options
  const doFetch = options.fetch ?? fetch
  const base = options.apiUrl.replace(/\/$/, '')
  const domain = { chainId: deployment.chainId, market: deployment.contracts.dataMarket }
  let token: string | undefined
  type OfferedMarket = Omit<MarketStatus, 'prices'> & { prices: MarketPrices }
  let market: OfferedMarket | undefined
  let channel: ConsumerChannel | undefined

  const fail = (code: string, message: string, details: Record<string, unknown> = {}): never => {
    throw new MarketClientError(code, message, { details })
  }

  const json = async (response: Response) => {
    try {
      return (await response.json()) as Record<string, unknown>
    } catch {
      return fail('API_ANSWER_INVALID', `${response.url} answered ${response.status} without JSON`)
    }
  }

  /** Learns the provider and its prices (/v1/status), and signs in with SIWE. */
  async function signIn(): Promise<void> {
    const status = await json(await doFetch(`${base}/v1/status`))
    const m = status.market as MarketStatus | null | undefined
    if (!m) fail('MARKET_ABSENT', `${base} charges nothing: query it without --consumer-key-file`)
    const found = m as MarketStatus
    if (getAddress(found.market) !== getAddress(domain.market)) {
      fail('MARKET_MISMATCH', `${base} names market ${found.market}, the deployment ${domain.market}`)
    }
    // kept only once every check below passed: a refused provider is never this client's market
    const offered: OfferedMarket = {
      market: getAddress(found.market),
      provider: getAddress(found.provider),
      prices: {
        reading: BigInt(found.prices.reading),
        aggregate: BigInt(found.prices.aggregate),
        streamedReading: BigInt(found.prices.streamedReading),
      },
    }
    const expected = options.prices
    if (expected) {
      const asked = offered.prices
      if (
        asked.reading !== expected.reading ||
        asked.aggregate !== expected.aggregate ||
        asked.streamedReading !== expected.streamedReading
      )
        fail(
          'PRICE_MISMATCH',
          `${base} asks ${asked.reading}/${asked.aggregate}/${asked.streamedReading} (reading/aggregate/streamed reading), the blueprint ${expected.reading}/${expected.aggregate}/${expected.streamedReading}`,
        )
    }
    // only a provider on the DataMarket's list can redeem a voucher: a stranger is refused before a signature
    const listed = await options.publicClient.readContract({
      address: domain.market,
      abi: dataMarketAbi,
      functionName: 'isProvider',
      args: [offered.provider],
    })
    if (!listed)
      fail('PROVIDER_NOT_LISTED', `${base} names provider ${offered.provider}, not on the DataMarket's list`)
    market = offered
    const stored = options.state?.load()
    channel =
      stored && getAddress(stored.provider) === market.provider
        ? stored
        : { provider: market.provider, owed: 0n, served: NOTHING_SERVED, servedCount: 0n }
    const { nonce } = (await json(await doFetch(`${base}/v1/market/nonce`))) as { nonce: string }
    const url = new URL(base)
    const message = createSiweMessage({
      address: account.address,
      chainId: deployment.chainId,
      domain: url.host,
      nonce,
      uri: base,
      version: '1',
      statement: 'Sign in to pay for proven readings of this depin network.',
      expirationTime: new Date(Date.now() + 60 * 60_000),
    })
    const signature = await account.signMessage({ message })
    const answer = await doFetch(`${base}/v1/market/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message, signature }),
    })
    const body = await json(answer)
    if (answer.status !== 200) {
      const error = body.error as { code: string; message: string }
      fail(error.code, `signing in failed: ${error.message}`)
    }
    token = body.token as string
  }

  /** The signed voucher settling `current`, in JSON. */
  const voucherFor = async (current: ConsumerChannel) =>
    signedVoucherToJson(
      await signVoucher(account, domain, {
        consumer: account.address,
        provider: current.provider,
        cumulativeAmount: current.owed,
        served: current.served,
        servedCount: current.servedCount,
      }),
    )

  const voucherHeader = async (current: ConsumerChannel) => {
    const payment = {
      x402Version: X402_VERSION,
      scheme: VOUCHER_SCHEME,
      network: `eip155:${deployment.chainId}`,
      payload: await voucherFor(current),
    }
    return Buffer.from(JSON.stringify(payment)).toString('base64')
  }

  /** Adopts the provider's channel when it is ahead of ours and the caller allowed it. */
  const adoptProviderChannel = (body: Record<string, unknown>): boolean => {
    const accepts = body.accepts as { extra?: { voucher?: Record<string, string> | null } }[] | undefined
    const theirs = accepts?.[0]?.extra?.voucher
    const ours = channel as ConsumerChannel
    if (!theirs || !options.acceptProviderChannel) return false
    const owed = BigInt(theirs.cumulativeAmount as string)
    const count = BigInt(theirs.servedCount as string)
    if (owed < ours.owed || count < ours.servedCount) return false
    channel = { provider: ours.provider, owed, served: theirs.served as Hex, servedCount: count }
    options.state?.save(channel)
    return true
  }

  /**
   * GETs a priced route, paying for it: the answer's readings are checked against the chain and the
   * channel advanced by exactly what they cost; any mismatch throws and nothing more is signed.
   * @param path e.g. `/v1/readings?device=0x…&from=…&to=…`
   * @param item what the route charges for: `reading` (each reading) or `aggregate` (each answer)
   * @param accept the caller's own check of the answer (an aggregate's figures, say), once its
   *   proofs and price hold: a reason refuses it (ANSWER_REFUSED), and the answer is not recorded
   *   as received, so no voucher ever pays for it
   * @example
   * const client = createMarketClient({ apiUrl, account, publicClient, deployment })
   * const { body, paid } = await client.get('/v1/readings?device=0x…', 'reading')
   */
  async function get(
    path: string,
    item: 'reading' | 'aggregate',
    accept?: (body: Record<string, unknown>) => string | undefined,
  ): Promise<{ body: Record<string, unknown>; paid: PaidReceipt }> {
    if (!token) await signIn()
    for (let attempt = 0; ; attempt++) {
      const current = channel as ConsumerChannel
      const answer = await doFetch(`${base}${path}`, {
        headers: { authorization: `Bearer ${token}`, 'x-payment': await voucherHeader(current) },
      })
      const body = await json(answer)
      if (answer.status === 402 || answer.status === 401) {
        const error = body.error as { code: string; message: string }
        if (error.code === 'VOUCHER_STALE' && attempt === 0 && adoptProviderChannel(body)) continue
        if (error.code === 'SESSION_EXPIRED' && attempt === 0) {
          await signIn()
          continue
        }
        return fail(error.code, `${path}: ${error.message}`, { status: answer.status, body })
      }
      if (answer.status !== 200) {
        const error = body.error as { code: string; message: string } | undefined
        return fail(error?.code ?? 'API_ERROR', `${path}: ${answer.status} ${error?.message ?? ''}`, { body })
      }
      let theirs: PaymentResponse
      try {
        const header = answer.headers.get('x-payment-response')
        theirs = JSON.parse(Buffer.from(header ?? '', 'base64').toString('utf8')) as PaymentResponse
      } catch {
        return fail('PAYMENT_RESPONSE_INVALID', 'the answer has no readable X-PAYMENT-RESPONSE')
      }
      const readings = (body.readings ?? []) as ProvenReadingJson[]
      return { body, paid: await check(readings, theirs, current, item, accept && (() => accept(body))) }
    }
  }

  /**
   * Checks a paid answer's readings (their proofs against the chain), its price and the provider's
   * new commitment against the consumer's own; only then advances (and saves) the channel.
   */
  async function check(
    readings: readonly ProvenReadingJson[],
    theirs: PaymentResponse,
    current: ConsumerChannel,
    item: 'reading' | 'aggregate' | 'streamedReading',
    accept: (() => string | undefined) | undefined,
  ): Promise<PaidReceipt> {
    const digests: Hex[] = new Array(readings.length)
    const failed = await verifyProvenReadings({
      readings,
      publicClient: options.publicClient,
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      epochManager: deployment.contracts.epochManager,
      ...(options.kinds ? { kinds: options.kinds } : {}),
      onVerified: (index, digest) => {
        digests[index] = digest
      },
    })
    if (failed.length > 0) {
      fail(
        'PROOF_INVALID',
        `${failed.length} of ${readings.length} readings do not hold: ${failed[0]?.why}; nothing more is signed`,
        {
          failed: failed.map((f) => f.why),
        },
      )
    }
    const prices = (market as NonNullable<typeof market>).prices
    const count = BigInt(readings.length)
    const price = item === 'aggregate' ? (count > 0n ? prices.aggregate : 0n) : prices[item] * count
    const next: ConsumerChannel = {
      provider: current.provider,
      owed: current.owed + price,
      served: extendServed(await loadKeccak256(), current.served, digests),
      servedCount: current.servedCount + count,
    }
    if (
      theirs.price !== price.toString() ||
      theirs.cumulativeAmount !== next.owed.toString() ||
      theirs.served !== next.served ||
      theirs.servedCount !== next.servedCount.toString()
    ) {
      fail(
        'PAYMENT_MISMATCH',
        `the provider charged ${theirs.price} for what costs ${price}; nothing more is signed`,
        {
          theirs,
          ours: { price: price.toString(), owed: next.owed.toString(), served: next.served },
        },
      )
    }
    const refusal = accept?.()
    if (refusal)
      fail('ANSWER_REFUSED', `${refusal}: it is not counted as received, and nothing is signed for it`)
    channel = next
    options.state?.save(next)
    return { price, owed: next.owed, servedCount: next.servedCount }
  }

  /** Signs and posts the voucher for everything received so far, so the provider can redeem it all. */
  async function settle(): Promise<ConsumerChannel> {
    if (!token) await signIn()
    const current = channel as ConsumerChannel
    const answer = await doFetch(`${base}/v1/market/vouchers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(await voucherFor(current)),
    })
    const body = await json(answer)
    if (answer.status !== 200) {
      const error = body.error as { code: string; message: string }
      fail(error.code, `settling failed: ${error.message}`)
    }
    return current
  }

  /**
   * Follows a paid stream (`/v1/stream?device=…`, or an area): the provider charges each settled
   * epoch's readings before it sends them (a `payment` event naming their price, count and new
   * commitment); each part's proofs, price and commitment are checked here before it counts as
   * received and goes to `onPart`, and only then is the voucher for it posted, which lets the
   * provider send the next. Epochs without readings come as parts without a payment. Resolves when
   * `signal` aborts or the stream ends; rejects with the refusal's code (DEPOSIT_INSUFFICIENT, …)
   * or PROOF_INVALID / PAYMENT_MISMATCH, after which nothing more is signed.
   * @example
   * await client.stream(`/v1/stream?device=${device}`, ({ epoch, readings }) => show(epoch, readings))
   */
  async function stream(
    path: string,
    onPart: (part: StreamPart) => void | Promise<void>,
    streamOptions: { signal?: AbortSignal; idleTimeoutMs?: number } = {},
  ): Promise<void> {
    if (!token) await signIn()
    // what was asked for: a part's readings must be of it (a device's, when one was named)
    const asked = new URL(path, base).searchParams.get('device')?.toLowerCase()
    // the caller's abort ends the stream between parts: a part being checked is settled first,
    // so that the provider holds the voucher of everything that arrived
    const connection = new AbortController()
    let inPart = false
    const stop = () => {
      if (!inPart) connection.abort()
    }
    streamOptions.signal?.addEventListener('abort', stop, { once: true })
    const idleMs = streamOptions.idleTimeoutMs ?? 60_000
    let idle: NodeJS.Timeout | undefined
    let idleExpired = false
    const touch = () => {
      clearTimeout(idle)
      idle = setTimeout(() => {
        idleExpired = true
        connection.abort()
      }, idleMs)
    }
    try {
      touch()
      const answer = await doFetch(`${base}${path}`, {
        headers: {
          authorization: `Bearer ${token}`,
          'x-payment': await voucherHeader(channel as ConsumerChannel),
          accept: 'text/event-stream',
        },
        signal: connection.signal,
      })
      if (answer.status !== 200) {
        const body = await json(answer)
        const error = body.error as { code: string; message: string } | undefined
        return fail(error?.code ?? 'API_ERROR', `${path}: ${answer.status} ${error?.message ?? ''}`, {
          status: answer.status,
          body,
        })
      }
      let pending: { payment: PaymentResponse & { count: number }; readings: ProvenReadingJson[] } | undefined
      let epoch: Record<string, unknown> | undefined
      let lastEpoch = -1n
      /** Readings received on this stream, by device and sequence number: none is sold twice. */
      const readingsSeen = new Set<string>()
      const identity = (r: ProvenReadingJson) => `${r.reading.device.toLowerCase()}#${r.reading.seq}`
      /** Why a part's readings are not what this stream asked for, if they are not. */
      const notAsked = (partEpoch: bigint, readings: readonly ProvenReadingJson[]) => {
        const inThisPart = new Set<string>()
        for (const r of readings) {
          if (BigInt(r.epoch) !== partEpoch)
            return `a reading of epoch ${r.epoch} in the part of epoch ${partEpoch}`
          if (asked && r.reading.device.toLowerCase() !== asked)
            return `a reading of ${r.reading.device}, not ${asked}`
          if (readingsSeen.has(identity(r)) || inThisPart.has(identity(r)))
            return `reading ${identity(r)} sent twice`
          inThisPart.add(identity(r))
        }
        return undefined
      }
      const onEvent = async (event: string, data: unknown) => {
        touch()
        if (event === 'error') {
          const e = data as { code: string; message: string }
          return fail(e.code, `${path}: ${e.message}`)
        }
        if (event === 'payment-required') {
          // the provider waits for the voucher of the last part: (re)post it
          await settle()
          return
        }
        if (event === 'payment') {
          const payment = data as PaymentResponse & { count: number }
          if (
            !Number.isSafeInteger(payment.count) ||
            payment.count < 1 ||
            payment.count > MAX_STREAM_READINGS
          )
            return fail('STREAM_INVALID', `${path}: a payment for ${String(payment.count)} readings`)
          pending = { payment, readings: [] }
          epoch = undefined
          return
        }
        if (event === 'epoch') {
          epoch = data as Record<string, unknown>
          const number = BigInt(String(epoch.epoch))
          // each epoch once, in order: nothing is sold twice
          if (number <= lastEpoch)
            return fail('STREAM_INVALID', `${path}: epoch ${number} after ${lastEpoch}`)
          lastEpoch = number
          if (!pending) await onPart({ epoch, readings: [] })
          return
        }
        if (event === 'reading') {
          if (!pending || !epoch) return fail('STREAM_INVALID', `${path}: a reading outside a paid part`)
          pending.readings.push(data as ProvenReadingJson)
          if (pending.readings.length < pending.payment.count) return
          const part = pending
          pending = undefined
          inPart = true
          try {
            const partEpoch = lastEpoch
            const paid = await check(
              part.readings,
              part.payment,
              channel as ConsumerChannel,
              'streamedReading',
              () => notAsked(partEpoch, part.readings),
            )
            for (const r of part.readings) readingsSeen.add(identity(r))
            await onPart({ epoch, readings: part.readings, paid })
            await settle()
          } finally {
            inPart = false
          }
          if (streamOptions.signal?.aborted) connection.abort()
        }
      }
      await readEventStream(answer, onEvent, connection.signal)
      if (idleExpired) fail('STREAM_IDLE', `${path}: nothing from the provider for ${idleMs} ms`)
    } finally {
      clearTimeout(idle)
      streamOptions.signal?.removeEventListener('abort', stop)
    }
  }

  return {
    signIn,
    get,
    stream,
    settle,
    /** The channel as the consumer keeps it (undefined before signing in). */
    channel: () => channel,
    /** The provider and its prices (after signing in). */
    market: () => market,
  }
}

export type MarketClient = ReturnType<typeof createMarketClient>

/** One part of a stream: a settled epoch and the readings of it that were asked for (paid for, if priced). */
export type StreamPart = { epoch: Record<string, unknown>; readings: ProvenReadingJson[]; paid?: PaidReceipt }

/**
 * Reads a server-sent event stream (eventsource-parser) to its end, or until `signal` aborts,
 * handing each event's name and parsed JSON data to `onEvent` in order; what `onEvent` throws
 * cancels the stream and rejects.
 */
export async function readEventStream(
  response: Response,
  onEvent: (event: string, data: unknown, id: string | undefined) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const events = (response.body as ReadableStream<Uint8Array>)
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
  const reader = events.getReader()
  try {
    for (;;) {
      const next = await reader.read().catch((error: unknown) => {
        if (signal?.aborted) return { done: true as const, value: undefined }
        throw error
      })
      if (next.done) return
      const { event, data, id } = next.value
      let parsed: unknown
      try {
        parsed = JSON.parse(data)
      } catch {
        throw new MarketClientError('STREAM_INVALID', `an event ${event ?? 'message'} whose data is not JSON`)
      }
      await onEvent(event ?? 'message', parsed, id)
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}
