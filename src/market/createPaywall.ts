/**
 * The API's side of the data market: priced routes answer only a signed-in consumer whose voucher
 * settles everything it was served before (HTTP 402 Payment Required otherwise, in x402's shape).
 *
 * One request, one round trip. A consumer signs in once (SIWE, src/market/siweSessions.ts), then
 * sends each paid request with an `X-PAYMENT` header: base64 of
 * `{ x402Version: 1, scheme: "depin-voucher", network: "eip155:<chainId>", payload: <voucher> }`,
 * where the voucher's cumulative amount and served commitment are exactly those of everything the
 * provider served it so far. It was signed after the consumer checked the last answer's proofs, so
 * a consumer pays only for readings it verified; the provider carries at most one answer unpaid,
 * and only while the consumer's deposit covers it. The answer names its price and the new
 * commitment in `X-PAYMENT-RESPONSE`; the consumer extends its own commitment with the digests it
 * received and checked, and signs the next voucher (or posts it to `/v1/market/vouchers` to settle
 * without a new request).
 *
 * Every refusal carries a code and serves nothing: 401 `SESSION_REQUIRED` / `SESSION_INVALID` /
 * `SESSION_EXPIRED`; 402 `PAYMENT_REQUIRED` (no voucher), `PAYMENT_INVALID` (not a voucher),
 * `VOUCHER_WRONG_CONSUMER`, `VOUCHER_WRONG_PROVIDER`, `VOUCHER_SIGNATURE_INVALID` (forged, or
 * for another chain or market), `VOUCHER_STALE` (replayed, or not settling what was served),
 * `DEPOSIT_INSUFFICIENT` (the deposit does not cover the answer).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Address, bytesToHex, type Hex, isAddressEqual } from 'viem'
import { z } from 'zod'
import { depinDomain, eip712DomainTypes, voucherTypes } from '../chain/typedData.ts'
import type { Keccak256 } from '../crypto/keccak.ts'
import type { IndexerStore, RedemptionRecord } from '../indexer/indexerStore.ts'
import type { Metrics } from '../protocol/metrics.ts'
import type { ChannelState, ProviderStore } from './providerStore.ts'
import { encodeServedBundle, type ServedRedemption } from './servedBundle.ts'
import { MAX_SIWE_MESSAGE_LENGTH, type SiweSessions } from './siweSessions.ts'
import {
  checkVoucherSignature,
  createVoucherHasher,
  type MarketDomain,
  type SignedVoucher,
  signedVoucherSchema,
} from './voucher.ts'

/** What the blueprint's market charges, in the payment token's smallest unit. */
export type MarketPrices = { reading: bigint; aggregate: bigint; streamedReading: bigint }

/** A consumer's funds on the DataMarket as this provider sees them. */
export type ConsumerFunds = {
  /** The deposit left (after every provider's redemptions). */
  balance: bigint
  /** The part announced for withdrawal (it leaves once due). */
  withdrawal: bigint
  /** What this provider already redeemed from the consumer. */
  redeemed: bigint
}

export type CreatePaywallOptions = {
  store: ProviderStore
  sessions: SiweSessions
  keccak: Keccak256
  domain: MarketDomain
  /** This provider: the address on the DataMarket's list that redeems the vouchers. */
  provider: Address
  /** The payment token (the x402 `asset`). */
  token: Address
  prices: MarketPrices
  /** Reads a consumer's funds from the chain. */
  readFunds(consumer: Address): Promise<ConsumerFunds>
  /** How long a read of a consumer's funds is trusted, ms (default 5 s; a shortfall re-reads). */
  fundsTtlMs?: number
  /** The provider's view of the chain: its redemptions, for the served bundles it publishes. */
  indexer?: IndexerStore
  /** An epoch's time window [start, end). */
  windowOf?: (epoch: bigint) => { start: bigint; end: bigint }
  /** Where it counts its answers and refusals (depin_market_*). */
  metrics?: Metrics
}

/** A paid request let through: the consumer and its channel as the voucher settled it. */
export type PaymentTicket = { consumer: Address; voucher: SignedVoucher; channel: ChannelState; quote: Quote }

/** What a paid answer delivers: the kind of item and the readings it serves (with their proofs). */
export type PaidAnswer = {
  item: keyof MarketPrices
  readings: readonly { epoch: string; digest: Hex; reading: { device: string } }[]
}

/** What a paid route is about to serve: its kind of item and at most how many readings. */
export type Quote = { item: keyof MarketPrices; maxReadings: number }

export const X402_VERSION = 1
export const VOUCHER_SCHEME = 'depin-voucher'

const paymentHeaderSchema = z.strictObject({
  x402Version: z.literal(X402_VERSION),
  scheme: z.literal(VOUCHER_SCHEME),
  network: z.string(),
  payload: signedVoucherSchema,
})

/** Longest X-PAYMENT header accepted, in characters. */
const MAX_PAYMENT_HEADER = 2_048

/** Whether a voucher settles a channel exactly: everything served so far, for what it cost. */
const settlesChannel = (v: SignedVoucher, channel: ChannelState) =>
  v.cumulativeAmount === channel.owed && v.served === channel.served && v.servedCount === channel.servedCount

const encodeHeader = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64')

export function createPaywall(options: CreatePaywallOptions) {
  const { store, sessions, keccak, domain, provider, prices } = options
  const network = `eip155:${domain.chainId}`
  const fundsTtl = options.fundsTtlMs ?? 5_000
  const hashVoucher = createVoucherHasher(keccak, domain)
  const funds = new Map<string, { at: number; value: ConsumerFunds }>()
  const refusals = options.metrics?.counter(
    'depin_market_refusals_total',
    'Paid requests refused (401/402), by code',
    ['code'],
  )
  const served = options.metrics?.counter(
    'depin_market_readings_charged_total',
    'Readings charged for, by kind of item (reading, aggregate, streamedReading)',
    ['item'],
  )

  const fundsOf = async (consumer: Address, fresh: boolean): Promise<ConsumerFunds> => {
    const cached = funds.get(consumer)
    if (!fresh && cached && Date.now() - cached.at < fundsTtl) return cached.value
    const value = await options.readFunds(consumer)
    funds.set(consumer, { at: Date.now(), value })
    if (funds.size > 100_000) funds.delete(funds.keys().next().value as string)
    return value
  }

  /** What the consumer must sign to settle its channel as it stands. */
  const voucherToSign = (channel: ChannelState) => ({
    consumer: channel.consumer,
    provider,
    cumulativeAmount: channel.owed.toString(),
    served: channel.served,
    servedCount: channel.servedCount.toString(),
  })

  /** That voucher as EIP-712 typed data, as wallets and `cast wallet sign --data` take it. */
  const typedDataOf = (channel: ChannelState) => ({
    types: { ...eip712DomainTypes, ...voucherTypes },
    primaryType: 'Voucher',
    domain: depinDomain(domain.chainId, domain.market),
    message: voucherToSign(channel),
  })

  /** The most an answer of `quote` costs. */
  const maxPrice = (quote: Quote) =>
    quote.item === 'aggregate' ? prices.aggregate : prices[quote.item] * BigInt(quote.maxReadings)

  const requirements = (
    request: FastifyRequest,
    quote: Quote | undefined,
    channel: ChannelState | undefined,
  ) => ({
    scheme: VOUCHER_SCHEME,
    network,
    maxAmountRequired: quote ? maxPrice(quote).toString() : '0',
    resource: request.url,
    description:
      'pay per proven reading: sign a depin Voucher settling everything served so far (extra.voucher), send it base64 in X-PAYMENT',
    mimeType: 'application/json',
    payTo: provider,
    maxTimeoutSeconds: 60,
    asset: options.token,
    extra: {
      market: domain.market,
      domain: depinDomain(domain.chainId, domain.market),
      prices: {
        reading: prices.reading.toString(),
        aggregate: prices.aggregate.toString(),
        streamedReading: prices.streamedReading.toString(),
      },
      voucher: channel ? voucherToSign(channel) : null,
      typedData: channel ? typedDataOf(channel) : null,
      signIn: '/v1/market/nonce',
    },
  })

  const refuse = (
    request: FastifyRequest,
    reply: FastifyReply,
    quote: Quote | undefined,
    status: 401 | 402,
    code: string,
    message: string,
    channel?: ChannelState,
    details: Record<string, unknown> = {},
  ) => {
    refusals?.inc({ code })
    return reply.status(status).send({
      error: { code, message, details },
      x402Version: X402_VERSION,
      accepts: [requirements(request, quote, channel)],
    })
  }

  /** The signed-in consumer of a request, or undefined once a 401 was sent. */
  const consumerOf = (request: FastifyRequest, reply: FastifyReply, quote?: Quote): Address | undefined => {
    const session = sessions.sessionOf(request.headers.authorization)
    if (session.type === 'session') return session.address
    const messages = {
      SESSION_REQUIRED:
        'sign in first: GET /v1/market/nonce, then POST /v1/market/session, then send Authorization: Bearer <token>',
      SESSION_INVALID: 'the bearer token names no session of this API',
      SESSION_EXPIRED: 'the session expired: sign in again',
    }
    refuse(request, reply, quote, 401, session.code, messages[session.code])
    return undefined
  }

  /** Parses and checks a voucher against the channel; a refusal is sent and undefined returned. */
  const checkVoucher = (
    request: FastifyRequest,
    reply: FastifyReply,
    quote: Quote | undefined,
    consumer: Address,
    channel: ChannelState,
    voucher: SignedVoucher,
  ): boolean => {
    if (!isAddressEqual(voucher.consumer, consumer)) {
      refuse(
        request,
        reply,
        quote,
        402,
        'VOUCHER_WRONG_CONSUMER',
        `the voucher is ${voucher.consumer}'s, the session ${consumer}'s`,
        channel,
      )
      return false
    }
    if (!isAddressEqual(voucher.provider, provider)) {
      refuse(
        request,
        reply,
        quote,
        402,
        'VOUCHER_WRONG_PROVIDER',
        `the voucher pays ${voucher.provider}, this provider is ${provider}`,
        channel,
      )
      return false
    }
    const signature = checkVoucherSignature(keccak, domain, voucher, hashVoucher)
    if (signature.type === 'invalid') {
      refuse(
        request,
        reply,
        quote,
        402,
        'VOUCHER_SIGNATURE_INVALID',
        `the voucher is not signed by ${consumer} for chain ${domain.chainId} and market ${domain.market} (${signature.reason})`,
        channel,
      )
      return false
    }
    if (!settlesChannel(voucher, channel)) {
      refuse(
        request,
        reply,
        quote,
        402,
        'VOUCHER_STALE',
        'the voucher does not settle exactly what was served so far: sign extra.voucher',
        channel,
        {
          signed: {
            cumulativeAmount: voucher.cumulativeAmount.toString(),
            servedCount: voucher.servedCount.toString(),
          },
        },
      )
      return false
    }
    return true
  }

  const parsePayment = (header: string | string[] | undefined): SignedVoucher | 'missing' | 'invalid' => {
    if (header === undefined) return 'missing'
    if (typeof header !== 'string' || header.length > MAX_PAYMENT_HEADER) return 'invalid'
    try {
      const parsed = paymentHeaderSchema.safeParse(JSON.parse(Buffer.from(header, 'base64').toString('utf8')))
      if (!parsed.success || parsed.data.network !== network) return 'invalid'
      return parsed.data.payload
    } catch {
      return 'invalid'
    }
  }

  /**
   * Lets a paid request through when it comes from a signed-in consumer with a voucher settling
   * everything served before; otherwise sends the 401/402 and returns undefined.
   */
  function guard(request: FastifyRequest, reply: FastifyReply, quote: Quote): PaymentTicket | undefined {
    const consumer = consumerOf(request, reply, quote)
    if (!consumer) return undefined
    const channel = store.channel(consumer)
    const payment = parsePayment(request.headers['x-payment'])
    if (payment === 'missing') {
      refuse(
        request,
        reply,
        quote,
        402,
        'PAYMENT_REQUIRED',
        'this route is paid: sign extra.voucher and send it in X-PAYMENT',
        channel,
      )
      return undefined
    }
    if (payment === 'invalid') {
      refuse(
        request,
        reply,
        quote,
        402,
        'PAYMENT_INVALID',
        `X-PAYMENT must be base64 JSON of an x402 ${VOUCHER_SCHEME} payment on ${network}`,
        channel,
      )
      return undefined
    }
    if (!checkVoucher(request, reply, quote, consumer, channel, payment)) return undefined
    return { consumer, voucher: payment, channel, quote }
  }

  /**
   * Charges a paid answer before it is sent: checks the consumer's deposit covers everything now
   * served, records the voucher and the served readings (one transaction), and names the price in
   * X-PAYMENT-RESPONSE. Returns false when a refusal was sent instead (then nothing was served).
   */
  async function charge(
    request: FastifyRequest,
    reply: FastifyReply,
    ticket: PaymentTicket,
    answer: PaidAnswer,
  ): Promise<boolean> {
    const { quote } = ticket
    const price = priceOf(answer)
    const owed = ticket.channel.owed + price
    const shortfall = await shortfallOf(ticket.consumer, owed)
    if (shortfall) {
      const f = shortfall
      refuse(
        request,
        reply,
        quote,
        402,
        'DEPOSIT_INSUFFICIENT',
        'the deposit on the DataMarket does not cover this answer: deposit more',
        ticket.channel,
        {
          price: price.toString(),
          owed: owed.toString(),
          balance: f.balance.toString(),
          withdrawal: f.withdrawal.toString(),
          redeemed: f.redeemed.toString(),
        },
      )
      return false
    }
    const recorded = await record(ticket.channel, ticket.voucher, owed, answer)
    if (!recorded) {
      refuse(
        request,
        reply,
        quote,
        402,
        'VOUCHER_STALE',
        'another request of this consumer was served meanwhile: sign extra.voucher',
        store.channel(ticket.consumer),
      )
      return false
    }
    reply.header('x-payment-response', encodeHeader(paymentResponse(ticket.consumer, price, recorded)))
    return true
  }

  /** Whether the consumer's latest voucher settles everything served to it. */
  const settles = (consumer: Address): boolean => {
    const channel = store.channel(consumer)
    return channel.voucher !== undefined && settlesChannel(channel.voucher, channel)
  }

  /**
   * A paid stream opened with `ticket`: its voucher (settling everything before) becomes the
   * channel's latest. False when another request moved the channel on meanwhile: then a 402
   * VOUCHER_STALE was sent.
   */
  async function openStream(
    request: FastifyRequest,
    reply: FastifyReply,
    ticket: PaymentTicket,
  ): Promise<boolean> {
    if (await store.recordVoucher(ticket.voucher)) return true
    refuse(
      request,
      reply,
      ticket.quote,
      402,
      'VOUCHER_STALE',
      'another request of this consumer was served meanwhile: sign extra.voucher',
      store.channel(ticket.consumer),
    )
    return false
  }

  /** What an answer costs: per reading, or per aggregate answer (with at least one reading). */
  const priceOf = (answer: PaidAnswer): bigint => {
    const count = BigInt(answer.readings.length)
    return answer.item === 'aggregate' ? (count > 0n ? prices.aggregate : 0n) : prices[answer.item] * count
  }

  /** The consumer's funds when its deposit does not cover `owed` in all (re-read once before saying so). */
  async function shortfallOf(consumer: Address, owed: bigint): Promise<ConsumerFunds | undefined> {
    const covered = (f: ConsumerFunds) => owed - f.redeemed <= f.balance - f.withdrawal
    if (covered(await fundsOf(consumer, false))) return undefined
    const fresh = await fundsOf(consumer, true)
    return covered(fresh) ? undefined : fresh
  }

  /**
   * Records the voucher that settled `channel` and the answer's readings as served, in one
   * transaction; the channel as it now stands, or undefined when another answer moved it on.
   */
  async function record(
    channel: ChannelState,
    voucher: SignedVoucher,
    owed: bigint,
    answer: PaidAnswer,
  ): Promise<{ owed: bigint; served: Hex; servedCount: bigint } | undefined> {
    const recorded = await store.recordAnswer(
      { owed: channel.owed, servedCount: channel.servedCount },
      {
        voucher,
        owed,
        readings: answer.readings.map((r) => ({
          epoch: BigInt(r.epoch),
          digest: r.digest,
          // lower-cased by the store: no checksum needed
          device: r.reading.device as Address,
        })),
      },
    )
    if (!recorded) return undefined
    served?.inc({ item: answer.item }, answer.readings.length)
    return { owed, ...recorded }
  }

  /** X-PAYMENT-RESPONSE's content (and a paid stream's `payment` event's). */
  const paymentResponse = (
    consumer: Address,
    price: bigint,
    now: { owed: bigint; served: Hex; servedCount: bigint },
  ) => ({
    success: true,
    network,
    payer: consumer,
    price: price.toString(),
    cumulativeAmount: now.owed.toString(),
    served: now.served,
    servedCount: now.servedCount.toString(),
  })

  /**
   * Charges the next part of a paid stream (`/v1/stream` of a device's or an area's readings):
   * allowed only once the consumer's latest voucher settles everything served before (it posts
   * one to `/v1/market/vouchers` after it checked each part), so the provider carries at most one
   * part unpaid. `unpaid` means wait for that voucher (the stream holds its place); `refused`
   * ends the stream with the code.
   */
  async function chargeStream(
    consumer: Address,
    readings: PaidAnswer['readings'],
  ): Promise<
    | { type: 'charged'; payment: ReturnType<typeof paymentResponse> & { count: number } }
    | { type: 'unpaid'; voucher: ReturnType<typeof voucherToSign> }
    | { type: 'refused'; code: string; message: string }
  > {
    const channel = store.channel(consumer)
    const v = channel.voucher
    if (!v || !settles(consumer)) return { type: 'unpaid', voucher: voucherToSign(channel) }
    const answer: PaidAnswer = { item: 'streamedReading', readings }
    const price = priceOf(answer)
    const owed = channel.owed + price
    if (await shortfallOf(consumer, owed))
      return {
        type: 'refused',
        code: 'DEPOSIT_INSUFFICIENT',
        message: 'the deposit on the DataMarket does not cover the next readings: deposit more',
      }
    const recorded = await record(channel, v, owed, answer)
    if (!recorded) return { type: 'unpaid', voucher: voucherToSign(store.channel(consumer)) }
    return {
      type: 'charged',
      payment: { ...paymentResponse(consumer, price, recorded), count: readings.length },
    }
  }

  const bundles = new Map<bigint, { bytes: Buffer; hash: Hex }>()
  /**
   * The served bundle of an epoch (src/market/servedBundle.ts): this provider's redemptions whose
   * block falls in it, each with the readings it served since the pair's previous redemption.
   */
  function servedBundle(
    epoch: bigint,
  ): { type: 'bundle'; bytes: Buffer; hash: Hex } | { type: 'none'; code: string; message: string } {
    const cached = bundles.get(epoch)
    if (cached) return { type: 'bundle', ...cached }
    const { indexer, windowOf } = options
    if (!indexer || !windowOf)
      return { type: 'none', code: 'NOT_PUBLISHED', message: 'this API publishes no bundles' }
    const window = windowOf(epoch)
    const seen = indexer.lastProcessed()?.timestamp ?? 0n
    if (seen < window.end)
      return {
        type: 'none',
        code: 'EPOCH_NOT_INDEXED',
        message: `epoch ${epoch} is not final in this provider's indexer yet`,
      }
    const mine = indexer
      .redemptionsBetween(window.start, window.end)
      .filter((r) => isAddressEqual(r.provider, provider))
    const redemptions: ServedRedemption[] = []
    for (const r of mine) {
      const before: RedemptionRecord | undefined = indexer.redemptionBefore(r)
      const fromCount = before?.servedCount ?? 0n
      const items = store.served(r.consumer, fromCount, r.servedCount)
      if (BigInt(items.length) !== r.servedCount - fromCount)
        return {
          type: 'none',
          code: 'SERVED_UNKNOWN',
          message: `this provider's store lacks readings ${fromCount}…${r.servedCount} served to ${r.consumer}`,
        }
      redemptions.push({
        consumer: r.consumer,
        block: r.block,
        logIndex: r.logIndex,
        fromCount,
        items: items.map((i) => ({ digest: i.digest, epoch: i.epoch })),
      })
    }
    const bytes = Buffer.from(encodeServedBundle({ provider, epoch, redemptions }))
    const hash = bytesToHex(keccak(bytes))
    bundles.set(epoch, { bytes, hash })
    if (bundles.size > 256) bundles.delete(bundles.keys().next().value as bigint)
    return { type: 'bundle', bytes, hash }
  }

  /** The market's own routes: sign-in, the consumer's channel, settling, and what was served. */
  function register(server: FastifyInstance): void {
    server.get<{ Params: { epoch: string } }>('/v1/market/served/:epoch', async (request, reply) => {
      if (!/^(0|[1-9]\d{0,18})$/.test(request.params.epoch)) {
        return reply
          .status(400)
          .send({ error: { code: 'INVALID_EPOCH', message: 'epoch must be a decimal integer', details: {} } })
      }
      const bundle = servedBundle(BigInt(request.params.epoch))
      if (bundle.type === 'none')
        return reply.status(404).send({ error: { code: bundle.code, message: bundle.message, details: {} } })
      return reply
        .header('content-type', 'application/octet-stream')
        .header('x-bundle-hash', bundle.hash)
        .send(bundle.bytes)
    })
    server.get('/v1/market/nonce', async () => {
      const { nonce, expiresAt } = sessions.issueNonce()
      return { nonce, expiresAt: new Date(expiresAt).toISOString(), chainId: domain.chainId, provider }
    })
    const signInSchema = z.strictObject({
      message: z.string().max(MAX_SIWE_MESSAGE_LENGTH),
      signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte signature'),
    })
    server.post('/v1/market/session', async (request, reply) => {
      const body = signInSchema.safeParse(request.body)
      if (!body.success) {
        return reply.status(400).send({
          error: { code: 'INVALID_BODY', message: 'the body must be { message, signature }', details: {} },
        })
      }
      const host = request.headers.host ?? ''
      const result = await sessions.signIn(body.data.message, body.data.signature as Hex, host)
      if (result.type === 'refused') {
        return reply.status(401).send({ error: { code: result.code, message: result.message, details: {} } })
      }
      return {
        token: result.token,
        address: result.address,
        expiresAt: new Date(result.expiresAt).toISOString(),
      }
    })
    server.get('/v1/market/channel', async (request, reply) => {
      const consumer = consumerOf(request, reply)
      if (!consumer) return reply
      const channel = store.channel(consumer)
      const f = await fundsOf(consumer, true)
      return {
        consumer,
        provider,
        market: domain.market,
        owed: channel.owed.toString(),
        served: channel.served,
        servedCount: channel.servedCount.toString(),
        // what the provider can redeem: the latest voucher's amount
        paid: (channel.voucher?.cumulativeAmount ?? 0n).toString(),
        redeemed: f.redeemed.toString(),
        deposit: { balance: f.balance.toString(), withdrawal: f.withdrawal.toString() },
        voucher: voucherToSign(channel),
        typedData: typedDataOf(channel),
      }
    })
    // settles the channel without a new request: a voucher for exactly what was served
    server.post('/v1/market/vouchers', async (request, reply) => {
      const consumer = consumerOf(request, reply)
      if (!consumer) return reply
      const channel = store.channel(consumer)
      const voucher = signedVoucherSchema.safeParse(request.body)
      if (!voucher.success) {
        return refuse(
          request,
          reply,
          undefined,
          402,
          'PAYMENT_INVALID',
          'the body must be a signed voucher',
          channel,
        )
      }
      if (!checkVoucher(request, reply, undefined, consumer, channel, voucher.data)) return reply
      if (!(await store.recordVoucher(voucher.data)))
        return refuse(
          request,
          reply,
          undefined,
          402,
          'VOUCHER_STALE',
          'another request of this consumer was served meanwhile: sign extra.voucher',
          store.channel(consumer),
        )
      return {
        settled: true,
        cumulativeAmount: channel.owed.toString(),
        servedCount: channel.servedCount.toString(),
      }
    })
  }

  /** The consumer a bearer token's session names (rate limits count by it), or undefined. */
  const sessionConsumer = (authorization: string): Address | undefined => {
    const session = sessions.sessionOf(authorization)
    return session.type === 'session' ? session.address : undefined
  }

  return {
    guard,
    charge,
    openStream,
    settles,
    consumerOf: sessionConsumer,
    chargeStream,
    register,
    servedBundle,
    provider,
    prices,
    domain,
  }
}

export type Paywall = ReturnType<typeof createPaywall>
