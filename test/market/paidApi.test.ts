/**
 * The API as a data-market provider, on real components: anvil with the DataMarket, epochs settled
 * on-chain, the API over real SQLite stores, consumers signing in with SIWE and paying with
 * vouchers over loopback HTTP, the provider redeeming on-chain.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Hex, parseUnits } from 'viem'
import { createSiweMessage } from 'viem/siwe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiServer, createApiServer } from '../../src/api/createApiServer.ts'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { DepinError } from '../../src/errors.ts'
import {
  type ConsumerChannel,
  createMarketClient,
  readEventStream,
} from '../../src/market/createMarketClient.ts'
import { VOUCHER_SCHEME, X402_VERSION } from '../../src/market/createPaywall.ts'
import { createRedeemer } from '../../src/market/createRedeemer.ts'
import type { ProviderStore } from '../../src/market/providerStore.ts'
import { decodeServedBundle, servedBundleProblem } from '../../src/market/servedBundle.ts'
import { extendServed, NOTHING_SERVED, signedVoucherToJson, signVoucher } from '../../src/market/voucher.ts'
import { type PaidApi, startPaidApi } from '../helpers/paidApi.ts'
import { type SettledReadings, settleReadings } from '../helpers/settledReadings.ts'
import { waitFor } from '../helpers/testBlueprint.ts'
import { startTestNetwork, type TestNetwork, WAD } from '../helpers/testNetwork.ts'

type Actor = Awaited<ReturnType<TestNetwork['actor']>>

const blueprint = loadBlueprint('blueprints/environment.yaml')
const PRICE = parseUnits('0.001', 18)
const AGGREGATE_PRICE = parseUnits('0.01', 18)

let dir: string
let net: TestNetwork
let settled: SettledReadings
let provider: Actor
let consumer: Actor
let poor: Actor
let wary: Actor
let picky: Actor
let providerStore: ProviderStore
let paid: PaidApi
let api: ApiServer

/** A second API over the same stores and paywall (its sessions shared), with options of its own. */
const anotherApi = (extra: Partial<Parameters<typeof createApiServer>[0]>) =>
  createApiServer({
    deployment: net.deployment,
    blueprint,
    indexer: settled.indexer.store,
    rewards: settled.store,
    paywall: paid.paywall,
    ...extra,
  })

/** The voucher a consumer signs before anything was served to it: nothing owed. */
const emptyVoucher = (who: Actor) =>
  signVoucher(
    who.account,
    { chainId: net.chainId, market: net.deployment.contracts.dataMarket },
    {
      consumer: who.address,
      provider: provider.address,
      cumulativeAmount: 0n,
      served: NOTHING_SERVED,
      servedCount: 0n,
    },
  )

/** Gives `who` tokens from the genesis supply and deposits them on the DataMarket. */
async function deposit(who: Actor, amount: bigint) {
  await net.send(net.contracts.depinToken.write.transfer([who.address, amount]))
  await net.send(
    who.contracts.depinToken.write.approve([net.deployment.contracts.dataMarket, amount]),
    who.clients,
  )
  await net.send(who.contracts.dataMarket.write.deposit([amount]), who.clients)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-market-'))
  net = await startTestNetwork()
  const owners = [await net.actor(), await net.actor()]
  ;[provider, consumer, poor, wary, picky] = [
    await net.actor(),
    await net.actor(),
    await net.actor(),
    await net.actor(),
    await net.actor(),
  ]
  settled = await settleReadings(net, { dir, owners, devices: 4, epochs: [1n, 2n], perDevice: 2 })
  for (const [who, amount] of [
    [consumer, 10n * WAD],
    [poor, PRICE * 3n],
    [wary, WAD],
    [picky, WAD],
  ] as const)
    await deposit(who, amount)
  paid = await startPaidApi(net, settled, { dir, blueprint, provider })
  ;({ api, providerStore } = paid)
}, 120_000)

afterAll(async () => {
  await paid?.stop()
  await settled?.close()
  await net?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** Each consumer's own record of its channel, kept across its clients (as a state file would). */
const channels = new Map<string, ConsumerChannel>()
const clientOf = (who: Actor, extra: Partial<Parameters<typeof createMarketClient>[0]> = {}) =>
  createMarketClient({
    apiUrl: api.url,
    account: who.account as never,
    publicClient: net.admin.publicClient as never,
    deployment: net.deployment,
    state: { load: () => channels.get(who.address), save: (c) => channels.set(who.address, c) },
    ...extra,
  })

const readingsPath = () => `/v1/readings?from=${settled.from}&to=${settled.to}&limit=100`
const devicePath = (i: number) =>
  `/v1/readings?device=${settled.devices[i]?.address}&from=${settled.from}&to=${settled.to}`

/** Signs `who` in by hand (as curl and cast would); returns the bearer token. */
async function signIn(who: Actor, tweak: { domain?: string; chainId?: number; nonce?: string } = {}) {
  const { nonce } = (await (await fetch(`${api.url}/v1/market/nonce`)).json()) as { nonce: string }
  const message = createSiweMessage({
    address: who.address,
    chainId: tweak.chainId ?? net.chainId,
    domain: tweak.domain ?? new URL(api.url).host,
    nonce: tweak.nonce ?? nonce,
    uri: api.url,
    version: '1',
  })
  const signature = await who.account.signMessage?.({ message })
  const answer = await fetch(`${api.url}/v1/market/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message, signature }),
  })
  return { status: answer.status, body: (await answer.json()) as Record<string, never>, message, signature }
}

const payment = (voucher: Awaited<ReturnType<typeof signVoucher>>, network = `eip155:${net.chainId}`) =>
  Buffer.from(
    JSON.stringify({
      x402Version: X402_VERSION,
      scheme: VOUCHER_SCHEME,
      network,
      payload: signedVoucherToJson(voucher),
    }),
  ).toString('base64')

async function get(path: string, headers: Record<string, string>) {
  const answer = await fetch(`${api.url}${path}`, { headers })
  // biome-ignore lint/suspicious/noExplicitAny: the tests read into arbitrary JSON answers
  return { status: answer.status, body: (await answer.json()) as any, headers: answer.headers }
}

describe('signing in (SIWE)', () => {
  it('gives a session for a message signed for this host, chain and a fresh nonce; once per nonce', async () => {
    const ok = await signIn(consumer)
    expect(ok.status).toBe(200)
    expect(ok.body.address).toBe(consumer.address)
    // the same message and nonce again
    const again = await fetch(`${api.url}/v1/market/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: ok.message, signature: ok.signature }),
    })
    expect(again.status).toBe(401)
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('SIWE_NONCE_UNKNOWN')
    expect((await signIn(consumer, { domain: 'evil.example' })).body).toMatchObject({
      error: { code: 'SIWE_DOMAIN_MISMATCH' },
    })
    expect((await signIn(consumer, { chainId: net.chainId + 1 })).body).toMatchObject({
      error: { code: 'SIWE_CHAIN_MISMATCH' },
    })
    expect((await signIn(consumer, { nonce: 'abcdefgh1234' })).body).toMatchObject({
      error: { code: 'SIWE_NONCE_UNKNOWN' },
    })
  })
})

describe('a priced route', () => {
  it('serves nothing without a session (401) or without a voucher (402, naming what to sign)', async () => {
    const anonymous = await get(readingsPath(), {})
    expect(anonymous.status).toBe(401)
    expect(anonymous.body).toMatchObject({ error: { code: 'SESSION_REQUIRED' }, x402Version: 1 })
    expect(anonymous.body.readings).toBeUndefined()
    const { body } = await signIn(consumer)
    const unpaid = await get(readingsPath(), { authorization: `Bearer ${body.token}` })
    expect(unpaid.status).toBe(402)
    expect(unpaid.body.readings).toBeUndefined()
    expect(unpaid.body.error.code).toBe('PAYMENT_REQUIRED')
    expect(unpaid.body.accepts[0]).toMatchObject({
      scheme: 'depin-voucher',
      network: `eip155:${net.chainId}`,
      payTo: provider.address,
      asset: net.deployment.contracts.depinToken,
      maxAmountRequired: (PRICE * 100n).toString(),
      extra: {
        market: net.deployment.contracts.dataMarket,
        voucher: {
          consumer: consumer.address,
          cumulativeAmount: '0',
          served: NOTHING_SERVED,
          servedCount: '0',
        },
      },
    })
    // free routes stay free
    expect((await get('/v1/status', {})).body.market).toMatchObject({ provider: provider.address })
    expect((await get('/v1/epochs', {})).status).toBe(200)
  })

  it('refuses forged, other-chain, other-consumer, stale and malformed vouchers, serving nothing', async () => {
    const { body } = await signIn(consumer)
    const auth = { authorization: `Bearer ${body.token}` }
    const domain = { chainId: net.chainId, market: net.deployment.contracts.dataMarket }
    const channel = providerStore.channel(consumer.address)
    const settles = {
      consumer: consumer.address,
      provider: provider.address,
      cumulativeAmount: channel.owed,
      served: channel.served,
      servedCount: channel.servedCount,
    }
    const forged = {
      ...(await signVoucher(poor.account, domain, { ...settles, consumer: poor.address })),
      consumer: consumer.address,
    }
    const otherChain = await signVoucher(consumer.account, { ...domain, chainId: net.chainId + 1 }, settles)
    const otherConsumer = await signVoucher(poor.account, domain, { ...settles, consumer: poor.address })
    const otherProvider = await signVoucher(consumer.account, domain, { ...settles, provider: poor.address })
    const ahead = await signVoucher(consumer.account, domain, {
      ...settles,
      cumulativeAmount: settles.cumulativeAmount + 1n,
    })
    const cases: [string, string][] = [
      [payment(forged), 'VOUCHER_SIGNATURE_INVALID'],
      [payment(otherChain), 'VOUCHER_SIGNATURE_INVALID'],
      [payment(await signVoucher(consumer.account, domain, settles), 'eip155:1'), 'PAYMENT_INVALID'],
      [payment(otherConsumer), 'VOUCHER_WRONG_CONSUMER'],
      [payment(otherProvider), 'VOUCHER_WRONG_PROVIDER'],
      [payment(ahead), 'VOUCHER_STALE'],
      ['not base64 json', 'PAYMENT_INVALID'],
      [Buffer.from('{"x402Version":1}').toString('base64'), 'PAYMENT_INVALID'],
      ['A'.repeat(5000), 'PAYMENT_INVALID'],
    ]
    for (const [header, code] of cases) {
      const answer = await get(readingsPath(), { ...auth, 'x-payment': header })
      expect(answer.status, code).toBe(402)
      expect(answer.body.error.code, code).toBe(code)
      expect(answer.body.readings).toBeUndefined()
    }
    expect(providerStore.channel(consumer.address)).toEqual(channel)
  })

  it('serves and charges a paying consumer exactly, which verifies every proof before it signs again', async () => {
    const client = clientOf(consumer)
    const first = await client.get(readingsPath(), 'reading')
    const readings = first.body.readings as { digest: Hex }[]
    expect(readings).toHaveLength(settled.accepted.length)
    expect(first.paid.price).toBe(PRICE * BigInt(readings.length))
    const second = await client.get(devicePath(0), 'reading')
    expect((second.body.readings as unknown[]).length).toBe(4)
    const aggregate = await client.get(
      `/v1/aggregate?field=temperature&cell=${settled.devices[0]?.cell}&ring=3&from=${settled.from}&to=${settled.to}`,
      'aggregate',
    )
    expect(aggregate.paid.price).toBe(AGGREGATE_PRICE)
    const served = [
      ...readings,
      ...(second.body.readings as { digest: Hex }[]),
      ...(aggregate.body.readings as { digest: Hex }[]),
    ]
    const owed = PRICE * BigInt(readings.length + 4) + AGGREGATE_PRICE
    expect(client.channel()).toEqual({
      provider: provider.address,
      owed,
      served: extendServed(
        await loadKeccak256(),
        NOTHING_SERVED,
        served.map((r) => r.digest),
      ),
      servedCount: BigInt(served.length),
    })
    // the provider recorded every served reading, in order, and holds a voucher up to the last answer
    const channel = providerStore.channel(consumer.address)
    expect(channel.owed).toBe(owed)
    expect(providerStore.served(consumer.address, 0n, 1000n).map((r) => r.digest)).toEqual(
      served.map((r) => r.digest),
    )
    expect(channel.voucher?.cumulativeAmount).toBe(owed - AGGREGATE_PRICE)
    // settling signs for the last answer too; the provider redeems it all on-chain
    await client.settle()
    const voucher = providerStore.channel(consumer.address).voucher
    expect(voucher?.cumulativeAmount).toBe(owed)
    const [before] = await net.contracts.dataMarket.read.accountOf([consumer.address])
    const pool = await net.contracts.rewardDistributor.read.feePool()
    const v = voucher as NonNullable<typeof voucher>
    // the provider's redeemer redeems it, and only the channels with something to add
    const redeemed: bigint[] = []
    const redeemer = createRedeemer({
      store: providerStore,
      clients: provider.clients,
      market: net.deployment.contracts.dataMarket,
      onRedeemed: (r) => redeemed.push(r.amount),
    })
    expect(await redeemer.redeemDue()).toBeGreaterThanOrEqual(1)
    expect(redeemed).toContain(owed)
    expect(await redeemer.redeemDue()).toBe(0)
    const [after] = await net.contracts.dataMarket.read.accountOf([consumer.address])
    expect(before - after).toBe(owed)
    // the provider publishes what that redemption paid for, and it holds against the chain
    await settled.indexer.syncOnce()
    const [redemption] = settled.indexer.store.redemptions(consumer.address)
    const r = redemption as NonNullable<typeof redemption>
    const epochOf = (t: bigint) => (t - net.deployment.genesisTime) / net.deployment.epochLength
    await net.testClient.setNextBlockTimestamp({
      timestamp: net.deployment.genesisTime + (epochOf(r.blockTimestamp) + 1n) * net.deployment.epochLength,
    })
    await net.testClient.mine({ blocks: 1 })
    await settled.indexer.syncOnce()
    const published = await fetch(`${api.url}/v1/market/served/${epochOf(r.blockTimestamp)}`)
    expect(published.status).toBe(200)
    const keccak = await loadKeccak256()
    const bytes = new Uint8Array(await published.arrayBuffer())
    const bundle = decodeServedBundle(keccak, bytes, published.headers.get('x-bundle-hash') as Hex)
    expect(bundle.redemptions[0]?.items.map((i) => i.digest)).toEqual(served.map((x) => x.digest))
    expect(servedBundleProblem(keccak, bundle, [r], () => undefined)).toBeUndefined()
    expect((await net.contracts.rewardDistributor.read.feePool()) - pool).toBe(owed)
    // the settling voucher pays for the next answer, once: sent again, it is stale
    const auth = { authorization: `Bearer ${(await signIn(consumer)).body.token}`, 'x-payment': payment(v) }
    expect((await get(devicePath(1), auth)).status).toBe(200)
    const replay = await get(devicePath(1), auth)
    expect(replay.status).toBe(402)
    expect(replay.body.error.code).toBe('VOUCHER_STALE')
    expect(replay.body.readings).toBeUndefined()
    // the consumer's client, which did not see that answer, is told the provider is ahead, and
    // pays for it only when told to take the provider's word
    await expect(client.get(devicePath(1), 'reading')).rejects.toMatchObject({ code: 'VOUCHER_STALE' })
    const trusting = clientOf(consumer, { acceptProviderChannel: true })
    expect((await trusting.get(devicePath(1), 'reading')).paid.price).toBe(PRICE * 4n)
  })

  it('refuses an answer the deposit does not cover, serving nothing and charging nothing', async () => {
    const client = clientOf(poor)
    // 3 readings' worth: one device's 4 readings are too many
    await expect(client.get(devicePath(1), 'reading')).rejects.toMatchObject({ code: 'DEPOSIT_INSUFFICIENT' })
    expect(providerStore.channel(poor.address)).toMatchObject({ owed: 0n, servedCount: 0n })
    // an empty answer costs nothing
    const empty = await client.get(`/v1/readings?from=1&to=2`, 'reading')
    expect(empty.paid.price).toBe(0n)
  })

  it('stops paying a provider whose answer does not hold: a bad proof, or a price not the network’s', async () => {
    const tamper = (edit: (body: { readings: { proof: Hex[] }[] }, headers: Headers) => void) =>
      (async (input: string | URL | Request, init?: RequestInit) => {
        const answer = await fetch(input, init)
        if (!String(input).includes('/v1/readings') || answer.status !== 200) return answer
        const body = (await answer.json()) as { readings: { proof: Hex[] }[] }
        const headers = new Headers(answer.headers)
        edit(body, headers)
        return new Response(JSON.stringify(body), { status: answer.status, headers })
      }) as typeof fetch
    const badProof = clientOf(consumer, {
      fetch: tamper((body) => {
        const first = body.readings[0]
        if (first) first.proof = [...first.proof].reverse()
      }),
    })
    await expect(badProof.get(devicePath(2), 'reading')).rejects.toMatchObject({ code: 'PROOF_INVALID' })
    // the provider is left with that answer unpaid: the consumer's next voucher does not cover it
    await expect(clientOf(consumer).get(devicePath(2), 'reading')).rejects.toMatchObject({
      code: 'VOUCHER_STALE',
    })
    const overcharged = clientOf(wary, {
      fetch: tamper((_body, headers) => {
        const response = JSON.parse(
          Buffer.from(headers.get('x-payment-response') ?? '', 'base64').toString(),
        ) as {
          price: string
        }
        response.price = (BigInt(response.price) * 2n).toString()
        headers.set('x-payment-response', Buffer.from(JSON.stringify(response)).toString('base64'))
      }),
    })
    await expect(overcharged.get(devicePath(3), 'reading')).rejects.toMatchObject({
      code: 'PAYMENT_MISMATCH',
    })
  })

  it('signs nothing for a provider asking other prices than its blueprint, or not on the market list', async () => {
    const stranger = await net.actor()
    const prices = { reading: PRICE, aggregate: AGGREGATE_PRICE, streamedReading: PRICE }
    // the blueprint's own prices: signs in and pays
    const honest = clientOf(stranger, { prices })
    await honest.signIn()
    expect(honest.market()?.prices).toEqual(prices)
    const cheap = clientOf(stranger, { prices: { ...prices, reading: PRICE / 2n } })
    await expect(cheap.signIn()).rejects.toMatchObject({ code: 'PRICE_MISMATCH' })
    expect(cheap.market()).toBeUndefined() // a refused provider is not the client's market
    // a status naming a provider the DataMarket does not list
    const impostor = (async (input: string | URL | Request, init?: RequestInit) => {
      const answer = await fetch(input, init)
      if (!String(input).endsWith('/v1/status')) return answer
      const body = (await answer.json()) as { market: { provider: string } }
      body.market.provider = stranger.address
      return new Response(JSON.stringify(body), { status: answer.status, headers: answer.headers })
    }) as typeof fetch
    const fooled = clientOf(stranger, { fetch: impostor })
    await expect(fooled.signIn()).rejects.toMatchObject({ code: 'PROVIDER_NOT_LISTED' })
    expect(fooled.market()).toBeUndefined()
    expect(channels.get(stranger.address)).toBeUndefined()
  })

  it('records nothing as received when the caller refuses an answer whose proofs and price hold', async () => {
    const client = clientOf(picky)
    const path = `/v1/aggregate?field=temperature&cell=${settled.devices[0]?.cell}&ring=3&from=${settled.from}&to=${settled.to}`
    await expect(
      client.get(path, 'aggregate', () => 'its figures do not follow from its readings'),
    ).rejects.toMatchObject({
      code: 'ANSWER_REFUSED',
    })
    expect(channels.get(picky.address)).toBeUndefined()
    // the provider served it and is left unpaid for it: the consumer's voucher does not cover it
    expect(providerStore.channel(picky.address).owed).toBe(AGGREGATE_PRICE)
    await expect(client.get(path, 'aggregate')).rejects.toMatchObject({ code: 'VOUCHER_STALE' })
  })
})

describe('a stranger with a loop', () => {
  const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
    const answer = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    })
    // biome-ignore lint/suspicious/noExplicitAny: the tests read into arbitrary JSON answers
    return { status: answer.status, body: (await answer.json()) as any }
  }

  it('gets codes, not sessions, for malformed, oversized, foreign and forged sign-ins', async () => {
    expect(await post('/v1/market/session', '{not json')).toMatchObject({ status: 400 })
    expect(await post('/v1/market/session', JSON.stringify({ message: 1, signature: '0x' }))).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_BODY' } },
    })
    const long = JSON.stringify({ message: 'x'.repeat(5_000), signature: `0x${'11'.repeat(65)}` })
    expect((await post('/v1/market/session', long)).body.error.code).toBe('INVALID_BODY')
    expect((await post('/v1/market/session', 'x'.repeat(70_000))).status).toBe(413)
    const notSiwe = JSON.stringify({ message: 'hello', signature: `0x${'11'.repeat(65)}` })
    expect((await post('/v1/market/session', notSiwe)).body.error.code).toBe('SIWE_MESSAGE_INVALID')
    // a fresh message naming the consumer, signed by someone else
    const { nonce } = (await (await fetch(`${api.url}/v1/market/nonce`)).json()) as { nonce: string }
    const message = createSiweMessage({
      address: consumer.address,
      chainId: net.chainId,
      domain: new URL(api.url).host,
      nonce,
      uri: api.url,
      version: '1',
    })
    const forged = await post(
      '/v1/market/session',
      JSON.stringify({ message, signature: await poor.account.signMessage?.({ message }) }),
    )
    expect(forged).toMatchObject({ status: 401, body: { error: { code: 'SIWE_SIGNATURE_INVALID' } } })
  })

  it('reaches nothing of a channel without a session, and pays nothing with a malformed voucher', async () => {
    expect((await get('/v1/market/channel', {})).body.error.code).toBe('SESSION_REQUIRED')
    expect((await get('/v1/market/channel', { authorization: 'Bearer nope' })).body.error.code).toBe(
      'SESSION_INVALID',
    )
    expect((await post('/v1/market/vouchers', '{}')).body.error.code).toBe('SESSION_REQUIRED')
    const { body } = await signIn(poor)
    const malformed = await post('/v1/market/vouchers', '{"consumer":1}', {
      authorization: `Bearer ${body.token}`,
    })
    expect(malformed).toMatchObject({ status: 402, body: { error: { code: 'PAYMENT_INVALID' } } })
  })

  it('holds at most 4 paid streams per consumer (429 STREAMS_LIMIT), and closes one whose part goes unpaid (PAYMENT_TIMEOUT)', async () => {
    const streaming = await anotherApi({ streamPaymentTimeoutMs: 1_500 })
    await streaming.start()
    const streamer = await net.actor()
    await deposit(streamer, WAD)
    const opened = new AbortController()
    try {
      const { body } = await signIn(streamer)
      const nothing = await emptyVoucher(streamer)
      const device = settled.devices[0]?.address as string
      const newest = settled.indexer.store.epochs(1)[0]?.epoch as bigint
      const open = (since: bigint, signal: AbortSignal) =>
        fetch(`${streaming.url}/v1/stream?device=${device}&since=${since}`, {
          headers: { authorization: `Bearer ${body.token}`, 'x-payment': payment(nothing) },
          signal,
        })
      // from the newest settled epoch on: nothing to charge yet, so the same voucher opens each
      for (let i = 0; i < 4; i++) expect((await open(newest, opened.signal)).status).toBe(200)
      const fifth = await open(newest, opened.signal)
      expect(fifth.status).toBe(429)
      expect(await fifth.json()).toMatchObject({ error: { code: 'STREAMS_LIMIT', details: { max: 4 } } })
      opened.abort()

      // once they are closed, a stream from the start: its first part is charged and sent, the
      // second waits for a voucher that never comes, and the stream closes
      const reading = new AbortController()
      const stream = await waitFor('the closed streams to be let go', async () => {
        const answer = await open(0n, reading.signal)
        if (answer.status === 200) return answer
        await answer.body?.cancel()
        return undefined
      })
      const events: { event: string; data: Record<string, unknown> }[] = []
      const timeout = setTimeout(() => reading.abort(), 20_000)
      await readEventStream(
        stream,
        (event, data) => {
          events.push({ event, data: data as Record<string, unknown> })
        },
        reading.signal,
      )
      clearTimeout(timeout)
      const names = events.map((e) => e.event)
      expect(names).toEqual(['payment', 'epoch', 'reading', 'reading', 'payment-required', 'error'])
      expect(events.at(-1)?.data).toMatchObject({ code: 'PAYMENT_TIMEOUT' })
      expect(events[1]?.data).toMatchObject({ epoch: '1' })
      // charged for the part it sent, exactly
      expect(providerStore.channel(streamer.address)).toMatchObject({ owed: 2n * PRICE, servedCount: 2n })
    } finally {
      opened.abort()
      await streaming.stop()
    }
  })

  it('frees the stream slot of a paid stream whose ticket the store failed to record', async () => {
    // a provider store that fails every write: each stream is refused, none holds a slot after
    const failing = await anotherApi({
      paywall: {
        ...paid.paywall,
        openStream: async () => {
          throw new DepinError('PROVIDER_STORE_FAILED', 'the writer is gone')
        },
      },
    })
    await failing.start()
    const streamer = await net.actor()
    await deposit(streamer, WAD)
    try {
      const { body } = await signIn(streamer)
      const nothing = await emptyVoucher(streamer)
      const device = settled.devices[0]?.address as string
      const statuses: number[] = []
      for (let i = 0; i < 6; i++) {
        const answer = await fetch(`${failing.url}/v1/stream?device=${device}&since=0`, {
          headers: { authorization: `Bearer ${body.token}`, 'x-payment': payment(nothing) },
        })
        await answer.arrayBuffer()
        statuses.push(answer.status)
      }
      // past the 4 streams a consumer may hold: still the store's failure, never STREAMS_LIMIT
      expect(statuses).toEqual(Array(6).fill(500))
    } finally {
      await failing.stop()
    }
  })

  it('stops following a provider that sends a reading twice in a paid stream, though it charged for it consistently', async () => {
    const keccak = await loadKeccak256()
    const duped = await net.actor()
    await deposit(duped, WAD)
    type Event = { event: string; data: Record<string, unknown>; id?: string }
    const parse = (block: string): Event => {
      const field = (name: string) =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name}: `))
          ?.slice(name.length + 2)
      const id = field('id')
      return {
        event: field('event') ?? 'message',
        data: JSON.parse(field('data') ?? 'null'),
        ...(id ? { id } : {}),
      }
    }
    const serialize = (e: Event) =>
      `${e.id ? `id: ${e.id}\n` : ''}event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`
    // the provider's first paid part, rewritten: its second reading replaced by the first, and the
    // payment's commitment made to match (a provider charging twice for one reading, consistently)
    const resending = (async (input: string | URL | Request, init?: RequestInit) => {
      const answer = await fetch(input, init)
      if (!String(input).includes('/v1/stream') || answer.status !== 200 || !answer.body) return answer
      let text = ''
      let held: Event[] | undefined
      let done = false
      const body = answer.body.pipeThrough(new TextDecoderStream()).pipeThrough(
        new TransformStream<string, string>({
          transform(chunk, out) {
            text += chunk
            for (let at = text.indexOf('\n\n'); at >= 0; at = text.indexOf('\n\n')) {
              const block = text.slice(0, at + 2)
              text = text.slice(at + 2)
              if (done || !block.includes('data: ')) {
                out.enqueue(block)
                continue
              }
              const event = parse(block)
              if (event.event === 'payment') held = [event]
              else if (held) held.push(event)
              else {
                out.enqueue(block)
                continue
              }
              const readings = held.filter((e) => e.event === 'reading')
              if (readings.length < Number(held[0]?.data.count) || readings.length < 2) continue
              ;(readings[1] as Event).data = (readings[0] as Event).data
              ;(held[0] as Event).data.served = extendServed(
                keccak,
                NOTHING_SERVED,
                readings.map((r) => r.data.digest as Hex),
              )
              for (const e of held) out.enqueue(serialize(e))
              done = true
            }
          },
        }),
      )
      return new Response(body.pipeThrough(new TextEncoderStream()), {
        status: answer.status,
        headers: answer.headers,
      })
    }) as typeof fetch
    const client = clientOf(duped, { fetch: resending })
    const parts: unknown[] = []
    const device = settled.devices[1]?.address as string
    await expect(
      client.stream(`/v1/stream?device=${device}&since=0`, (part) => {
        parts.push(part)
      }),
    ).rejects.toMatchObject({ code: 'ANSWER_REFUSED', message: expect.stringMatching(/sent twice/) })
    // nothing counted as received, nothing signed for it: the provider holds the part unpaid
    expect(parts).toEqual([])
    expect(channels.get(duped.address)).toBeUndefined()
    expect(providerStore.channel(duped.address)).toMatchObject({
      owed: 2n * PRICE,
      servedCount: 2n,
      voucher: { cumulativeAmount: 0n, servedCount: 0n },
    })
  })

  it('is rate-limited per IP, and a signed-in consumer per consumer on top, with a typed 429', async () => {
    const limited = await anotherApi({ rateLimit: { perIp: 6, perConsumer: 3 } })
    await limited.start()
    try {
      const statuses = async (n: number, headers: Record<string, string> = {}) => {
        const answers = []
        for (let i = 0; i < n; i++) answers.push(await fetch(`${limited.url}/v1/status`, { headers }))
        return Promise.all(
          answers.map(async (a) => ({
            status: a.status,
            body: (await a.json()) as { error?: { message: string } },
          })),
        )
      }
      // sign in on the main API (its sessions are the paywall's, shared)
      const { body } = await signIn(wary)
      // the consumer's own budget: 3 a second
      const byConsumer = await statuses(5, { authorization: `Bearer ${body.token}` })
      expect(byConsumer.map((a) => a.status)).toEqual([200, 200, 200, 429, 429])
      expect(byConsumer[3]?.body.error?.message).toMatch(/from this consumer/)
      // and those it let through counted against the IP too (3 of 6): many wallets share one IP's budget
      const byIp = await statuses(4)
      expect(byIp.map((a) => a.status)).toEqual([200, 200, 200, 429])
      expect(byIp[3]?.body.error?.message).toMatch(/from this address/)
      // a made-up bearer token is no consumer: it counts against the IP, spent
      expect((await statuses(1, { authorization: 'Bearer made-up' }))[0]?.status).toBe(429)
    } finally {
      await limited.stop()
    }
  })

  it('gets 400 or 404 for served bundles of malformed, unfinished and far-future epochs', async () => {
    for (const [epoch, status, code] of [
      ['abc', 400, 'INVALID_EPOCH'],
      ['-1', 400, 'INVALID_EPOCH'],
      ['99999999999999999999', 400, 'INVALID_EPOCH'],
      ['1000000000', 404, 'EPOCH_NOT_INDEXED'],
      ['999999999999999999', 404, 'EPOCH_NOT_INDEXED'],
    ] as const) {
      const answer = await get(`/v1/market/served/${epoch}`, {})
      expect(answer.status, epoch).toBe(status)
      expect(answer.body.error.code, epoch).toBe(code)
    }
    // an epoch without redemptions of this provider: an empty bundle
    const empty = await fetch(`${api.url}/v1/market/served/0`)
    expect(empty.status).toBe(200)
    expect(new TextDecoder().decode(await empty.arrayBuffer())).toMatch(/"redemptions":0\}\n$/)
  })
})
