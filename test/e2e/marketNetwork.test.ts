/**
 * The data market end to end, on the embedded network as `depin up` runs it (anvil, the contracts,
 * the gateway, three validators, the indexers, a simulated fleet, and the API as the market's
 * provider with its own key): a consumer deposits with `depin market deposit`, pays for readings
 * with `depin readings --consumer-key-file` and for an aggregate and more readings through the SDK,
 * the provider redeems the voucher, and the validators credit the fees in the rewards tree of the
 * next settled epoch. Then: the consumer's deposit went down by exactly the prices of what it
 * received; the provider's and the protocol's cumulative amounts went up by exactly their shares;
 * each owner's went up by its emission plus exactly its devices' share of what was served; and
 * claims pay those amounts out.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { latLngToCell } from 'h3-js'
import { type Address, formatUnits, getAddress, type Hex, parseEther, parseUnits } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { ProvenReadingJson } from '../../src/api/verifyProvenReadings.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { getContracts } from '../../src/chain/getContracts.ts'
import { sendTransaction } from '../../src/chain/sendTransaction.ts'
import { anvilAccounts } from '../../src/chain/startAnvil.ts'
import { runClaim } from '../../src/cli/claim.ts'
import { channelFileState, channelPath, loadConsumerKey, readChannelFile } from '../../src/cli/consumerKey.ts'
import { runMarketDeposit } from '../../src/cli/market.ts'
import { runAggregate, runReadings, runStream } from '../../src/cli/query.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import {
  createMarketClient,
  type MarketClient,
  type StreamPart,
} from '../../src/market/createMarketClient.ts'
import { extendServed, NOTHING_SERVED } from '../../src/market/voucher.ts'
import { type EmbeddedNetwork, startEmbeddedNetwork } from '../../src/network/startEmbeddedNetwork.ts'
import { createFleet } from '../../src/usecases/environment/simulator/createFleet.ts'
import type { EnvironmentSimulationOptions } from '../../src/usecases/environment/simulator/stationOptions.ts'
import { launchChromium } from '../helpers/launchChromium.ts'
import { type Scrape, scrapeMetrics } from '../helpers/scrapeMetrics.ts'
import { shortEpochBlueprint, waitFor } from '../helpers/testBlueprint.ts'

const { blueprint } = shortEpochBlueprint()
const market = blueprint.market as NonNullable<typeof blueprint.market>
const fleet = createFleet({ size: 6, blueprint, seed: 11 })
const BPS = 10_000n
const run = promisify(execFile)

let dir: string
let network: EmbeddedNetwork
let keyFile: string
let consumer: Address
let client: MarketClient
/** Every reading the consumer received and checked, by lower-case device; and what it owes. */
const received = new Map<string, number>()
let owed = 0n
let depositBefore = 0n
/** The epoch that credited the redemption, and what it credited through each device. */
let creditingEpoch = -1n
const usageByDevice = new Map<string, bigint>()

const admin = () => createChainClients({ rpcUrl: network.rpcUrl, privateKey: anvilAccounts[0] })

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-market-e2e-'))
  network = await startEmbeddedNetwork({
    dataDir: dir,
    blueprint,
    validators: 3,
    // the test redeems when it has paid for everything (one redemption to follow)
    redeemIntervalMs: 3_600_000,
    // the free preview shows readings older than this (an hour by default)
    previewDelaySeconds: 20,
    simulation: { fleet, intervalSeconds: 2 } satisfies EnvironmentSimulationOptions,
  })
  // readings settled: something to buy
  await waitFor(
    'two settled epochs with accepted readings',
    () => network.indexer.store.epochs().filter((e) => e.accepted > 0).length >= 2 || undefined,
    180_000,
  )
  // the consumer's key, as the CLI makes it; funded by the user (here the genesis holder)
  keyFile = join(dir, 'consumer', 'consumer.key')
  consumer = loadConsumerKey(keyFile).account.address
  const genesis = await admin()
  await sendTransaction(
    genesis.publicClient,
    getContracts(genesis, network.deployment).depinToken.write.transfer([consumer, parseUnits('10', 18)]),
  )
  await sendTransaction(
    genesis.publicClient,
    (genesis.walletClient as NonNullable<typeof genesis.walletClient>).sendTransaction({
      to: consumer,
      value: parseEther('1'),
    }),
  )
  let cl: MarketClient | undefined
  cl = createMarketClient({
    apiUrl: network.apiUrl,
    account: privateKeyToAccount(readFileSync(keyFile, 'utf8').trim() as Hex),
    publicClient: genesis.publicClient,
    deployment: network.deployment,
    // the same channel file as the CLI's: SDK and CLI pay on one channel
    state: channelFileState(keyFile, () => cl?.market()?.provider),
  })
  client = cl
}, 240_000)

afterAll(async () => {
  vi.restoreAllMocks()
  await network?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const accountOf = async () => {
  const genesis = await admin()
  const [balance] = await getContracts(genesis, network.deployment).dataMarket.read.accountOf([consumer])
  return balance
}

describe('the data market on the embedded network', () => {
  it('lists the API as the provider, prices /v1/readings and keeps the dashboard preview free', async () => {
    const provider = network.provider as NonNullable<EmbeddedNetwork['provider']>
    const genesis = await admin()
    const { dataMarket } = getContracts(genesis, network.deployment)
    expect(await dataMarket.read.providers()).toEqual([provider.address])
    expect(await dataMarket.read.providerUrl([provider.address])).toBe(network.apiUrl)
    const status = (await (await fetch(`${network.apiUrl}/v1/status`)).json()) as {
      market: { provider: string; prices: Record<string, string> }
    }
    expect(status.market.provider).toBe(provider.address)
    expect(status.market.prices.reading).toBe(market.prices.reading.toString())
    const device = fleet.stations[0]?.account.address as Address
    const unpaid = await fetch(`${network.apiUrl}/v1/readings?device=${device}&from=0`)
    expect(unpaid.status).toBe(401)
    expect(((await unpaid.json()) as { error: { code: string } }).error.code).toBe('SESSION_REQUIRED')
    // the settled readings become a preview once older than previewDelaySeconds
    const preview = await waitFor('settled readings older than the preview delay', async () => {
      const answer = (await (await fetch(`${network.apiUrl}/v1/devices/${device}/latest`)).json()) as {
        paid: boolean
        readings: ProvenReadingJson[]
      }
      return answer.readings.length > 0 ? answer : undefined
    })
    expect(preview.paid).toBe(true)
    expect(preview.readings.length).toBeLessThanOrEqual(20)
    expect(preview.readings.every((r) => r.reading.device.toLowerCase() === device.toLowerCase())).toBe(true)
    // delayed: the live readings are what the market sells
    const now = BigInt(Math.floor(Date.now() / 1000))
    expect(preview.readings.every((r) => BigInt(r.reading.time) <= now - 20n + 1n)).toBe(true)
    const tooMany = await fetch(`${network.apiUrl}/v1/devices/${device}/latest?limit=21`)
    expect(tooMany.status).toBe(400)
    // the OpenAPI document names the market's routes where the API is a provider
    const { paths } = (await (await fetch(`${network.apiUrl}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>
    }
    expect(Object.keys(paths['/v1/market/session'] ?? {})).toEqual(['post'])
    expect(Object.keys(paths['/v1/market/vouchers'] ?? {})).toEqual(['post'])
    expect(Object.keys(paths['/v1/market/served/{epoch}'] ?? {})).toEqual(['get'])
  })

  it('a consumer deposits with the CLI, then pays for readings, an aggregate and a stream (CLI and SDK)', async () => {
    const lines: string[] = []
    await runMarketDeposit('5', {
      consumerKeyFile: keyFile,
      rpcUrl: network.rpcUrl,
      dataDir: dir,
      print: (line) => lines.push(line),
    })
    expect(lines.join('\n')).toMatch(
      new RegExp(`deposited 5 ${blueprint.token.symbol} for 0x[0-9a-fA-F]{40}, tx 0x`),
    )
    depositBefore = await accountOf()
    expect(depositBefore).toBe(parseUnits('5', 18))
    const { prices } = market
    let counted = 0n
    const [first, second, third] = fleet.stations.map((s) => s.account.address) as [Address, Address, Address]
    const since = (network.indexer.store.epochs(1)[0] as { epoch: bigint }).epoch - 1n
    const around = fleet.stations[1] as (typeof fleet.stations)[number]
    const cell = latLngToCell(around.lat, around.lng, 8)
    const common = { api: network.apiUrl, rpcUrl: network.rpcUrl, dataDir: dir, consumerKeyFile: keyFile }

    // the CLI: each proof checked, then the voucher for exactly what arrived settled
    const cli = async (run: () => Promise<void>) => {
      const log = vi.spyOn(console, 'log').mockImplementation(() => {})
      const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
      try {
        await run()
        return {
          out: log.mock.calls.map((c) => String(c[0])),
          err: errors.mock.calls.map((c) => String(c[0])).join('\n'),
        }
      } finally {
        log.mockRestore()
        errors.mockRestore()
      }
    }
    const readingLines = (out: string[]) => out.filter((l) => /^epoch \d+ seq \d+ /.test(l)).length
    const readings = await cli(() => runReadings({ ...common, device: first, from: '0', limit: '7' }))
    expect(readingLines(readings.out)).toBe(7)
    expect(readings.err).toContain('paid')
    counted += 7n
    owed += 7n * prices.reading

    const aggregate = await cli(() =>
      runAggregate({ ...common, field: 'temperature', cell, ring: '1', from: '0' }),
    )
    expect(aggregate.out).toContain('recomputed here from the readings returned: the same figures as the API')
    const aggregated = BigInt(/^count (\d+),/m.exec(aggregate.out.join('\n'))?.[1] ?? '0')
    expect(aggregated).toBeGreaterThan(0n)
    expect(aggregate.err).toContain(`an aggregate of ${aggregated} readings`)
    counted += aggregated
    owed += prices.aggregate

    const streamed = await cli(() =>
      runStream({ ...common, device: third, since: since.toString(), ring: '1', epochs: '1' }),
    )
    const streamedCount = BigInt(readingLines(streamed.out))
    expect(streamedCount).toBeGreaterThan(0n)
    expect(streamed.err).toContain(`for ${streamedCount} streamed readings`)
    expect(process.exitCode ?? 0).toBe(0)
    counted += streamedCount
    owed += streamedCount * prices.streamedReading

    // the SDK, on the same channel file (it signs in after the CLI's runs and loads it)
    const paidReadings = await client.get(`/v1/readings?device=${second}&from=0&limit=5`, 'reading')
    expect((paidReadings.body.readings as ProvenReadingJson[]).length).toBe(5)
    counted += 5n
    owed += 5n * prices.reading
    expect(paidReadings.paid).toEqual({ price: 5n * prices.reading, owed, servedCount: counted })
    const paidAggregate = await client.get(
      `/v1/aggregate?cell=${cell}&ring=1&field=temperature&from=0`,
      'aggregate',
    )
    counted += BigInt((paidAggregate.body.readings as ProvenReadingJson[]).length)
    owed += prices.aggregate
    expect(paidAggregate.paid).toMatchObject({ owed, servedCount: counted })
    await client.settle()
    // a stream of the second device from `since`: two parts, each checked and paid before the next comes
    const controller = new AbortController()
    const parts: StreamPart[] = []
    await client.stream(
      `/v1/stream?device=${second}&since=${since - 1n}`,
      (part) => {
        if (part.readings.length === 0) return
        parts.push(part)
        counted += BigInt(part.readings.length)
        owed += BigInt(part.readings.length) * prices.streamedReading
        expect(part.paid).toEqual({
          price: BigInt(part.readings.length) * prices.streamedReading,
          owed,
          servedCount: counted,
        })
        if (parts.length === 2) controller.abort()
      },
      { signal: controller.signal },
    )
    expect(parts.length).toBe(2)
    expect(BigInt(parts[1]?.epoch.epoch as string)).toBeGreaterThan(BigInt(parts[0]?.epoch.epoch as string))

    // the consumer's own record: exactly what it counted, priced as the blueprint says
    const provider = network.provider as NonNullable<EmbeddedNetwork['provider']>
    const channel = readChannelFile(channelPath(keyFile, provider.address))
    expect(channel.owed).toBe(owed)
    expect(channel.servedCount).toBe(counted)
    // the provider's record of what it served matches the consumer's commitment reading for reading;
    // each reading's device comes from the validators' accepted readings, not from the provider
    const rows = provider.store.served(consumer, 0n, counted)
    expect(BigInt(rows.length)).toBe(counted)
    const keccak = await loadKeccak256()
    expect(
      extendServed(
        keccak,
        NOTHING_SERVED,
        rows.map((r) => r.digest),
      ),
    ).toBe(channel.served)
    const store = network.validators[0]?.store as NonNullable<EmbeddedNetwork['validators'][0]>['store']
    for (const row of rows) {
      const device = store.acceptedDevice(row.epoch, row.digest) as string
      expect(device).toBeDefined()
      received.set(device.toLowerCase(), (received.get(device.toLowerCase()) ?? 0) + 1)
    }
    expect(received.size).toBeGreaterThanOrEqual(3)
  })

  it('refuses an unpaid stream of readings and keeps the stream of epochs free', async () => {
    const device = fleet.stations[0]?.account.address as Address
    const unpaid = await fetch(`${network.apiUrl}/v1/stream?device=${device}`)
    expect(unpaid.status).toBe(401)
    expect(((await unpaid.json()) as { error: { code: string } }).error.code).toBe('SESSION_REQUIRED')
    const controller = new AbortController()
    const free = await fetch(
      `${network.apiUrl}/v1/stream?since=${network.indexer.store.epochs(1)[0]?.epoch}`,
      {
        signal: controller.signal,
      },
    )
    expect(free.status).toBe(200)
    controller.abort()
  })

  it('after settlement the deposit went down by exactly the prices, and every share reached its account', async () => {
    const provider = network.provider as NonNullable<EmbeddedNetwork['provider']>
    const landed = await provider.redeemer?.redeemDue()
    expect(landed).toBe(1)
    expect(await accountOf()).toBe(depositBefore - owed)
    const [redemption] = network.indexer.store.redemptions(consumer)
    const r =
      redemption ??
      (await waitFor('the redemption indexed', () => network.indexer.store.redemptions(consumer)[0]))
    expect(r.amount).toBe(owed)
    const { genesisTime, epochLength } = network.deployment
    const redeemedIn = (r.blockTimestamp - genesisTime) / epochLength
    // the first epoch settled from the redemption's on credits it
    const crediting = await waitFor(
      'an epoch settled after the redemption',
      () => network.indexer.store.epochs().find((e) => e.epoch >= redeemedIn),
      120_000,
    )
    const base = network.indexer.store.epochs().find((e) => e.epoch < crediting.epoch)
    const store = network.validators[0]?.store as NonNullable<EmbeddedNetwork['validators'][0]>['store']
    const after = store.result(crediting.epoch)?.cumulative as Map<string, bigint>
    const before = base ? (store.result(base.epoch)?.cumulative ?? new Map<string, bigint>()) : new Map()
    const delta = (account: string) =>
      (after.get(account.toLowerCase()) ?? 0n) - (before.get(account.toLowerCase()) ?? 0n)

    // the split, recomputed here from what the consumer received
    const n = BigInt([...received.values()].reduce((a, b) => a + b, 0))
    const devicesPool = (owed * BigInt(market.split.deviceOwnersBps)) / BPS
    const providerShare = (owed * BigInt(market.split.providerBps)) / BPS
    const ownerOf = (device: string) => network.indexer.store.getDevice(getAddress(device))?.owner as Address
    const usageOf = new Map<string, bigint>()
    let given = providerShare
    creditingEpoch = crediting.epoch
    for (const [device, c] of received) {
      const share = (devicesPool * BigInt(c)) / n
      usageByDevice.set(device, share)
      const owner = ownerOf(device).toLowerCase()
      usageOf.set(owner, (usageOf.get(owner) ?? 0n) + share)
      given += share
    }
    const treasury = await getContracts(await admin(), network.deployment).dataMarket.read.treasury()
    expect(delta(provider.address)).toBe(providerShare)
    expect(delta(treasury)).toBe(owed - given)
    // owners: this epoch's emission (their devices' receipts) plus exactly their usage share
    const receipts = store.receipts(crediting.epoch)
    const owners = new Set(fleet.stations.map((s) => ownerOf(s.account.address).toLowerCase()))
    for (const owner of owners) {
      const emission = receipts
        .filter((x) => x.owner.toLowerCase() === owner)
        .reduce((sum, x) => sum + x.reward, 0n)
      expect(delta(owner), owner).toBe(emission + (usageOf.get(owner) ?? 0n))
    }
    // nothing credited beyond emission and the fees: the fee part sums to exactly what was paid
    const emitted = receipts.reduce((sum, x) => sum + x.reward, 0n)
    const validatorsCredit = [...after.keys()]
      .filter((a) => !owners.has(a) && a !== provider.address.toLowerCase() && a !== treasury.toLowerCase())
      .reduce((sum, a) => sum + delta(a), 0n)
    expect(crediting.total).toBe(emitted + validatorsCredit + owed)

    // claims pay it: the provider's and one owner's
    const genesis = await admin()
    const { depinToken } = getContracts(genesis, network.deployment)
    for (const account of [provider.address, getAddress([...usageOf.keys()][0] as string)]) {
      await waitFor('the API to serve the crediting epoch', async () => {
        const answer = (await (await fetch(`${network.apiUrl}/v1/rewards/${account}`)).json()) as {
          epoch: string | null
        }
        return answer.epoch !== null && BigInt(answer.epoch) >= crediting.epoch ? true : undefined
      })
      const held = await depinToken.read.balanceOf([account])
      const answer = (await (await fetch(`${network.apiUrl}/v1/rewards/${account}`)).json()) as {
        claimable: string
      }
      const lines: string[] = []
      await runClaim({
        owner: account,
        api: network.apiUrl,
        rpcUrl: network.rpcUrl,
        dataDir: dir,
        print: (line) => lines.push(line),
      })
      expect(await depinToken.read.balanceOf([account])).toBe(held + BigInt(answer.claimable))
      // the provider earns from usage only: what it claimed is its share, exactly
      if (account === provider.address) expect(BigInt(answer.claimable)).toBe(providerShare)
    }
  })

  it("shows a consumer's deposit and spending, and a device's emission and usage, on the dashboard", async () => {
    const store = network.validators[0]?.store as NonNullable<EmbeddedNetwork['validators'][0]>['store']
    const [device, usage] = [...usageByDevice.entries()].sort((a, b) => (a[1] > b[1] ? -1 : 1))[0] as [
      string,
      bigint,
    ]
    expect(store.usageOf(device, [creditingEpoch]).get(creditingEpoch)).toBe(usage)
    const browser = await launchChromium()
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
      const errors: string[] = []
      page.on('pageerror', (error) => errors.push(error.message))
      page.on('console', (message) => {
        // the device panel's first ask for readings is refused (401: they are paid), as it expects
        if (message.type() === 'error' && !/status of 401/.test(message.text())) errors.push(message.text())
      })
      await page.goto(`${network.apiUrl}/`)
      await page.waitForSelector('#market[data-ready="true"]')
      expect(await page.locator('#market-intro').textContent()).toContain(
        `This API sells readings as provider ${network.provider?.address.slice(0, 8)}`,
      )
      // a device's readings: the free preview, each proof checked in the browser
      await page.selectOption('#device-select', getAddress(device))
      await page.waitForSelector('#verified[data-done="true"]')
      expect(await page.locator('#device').textContent()).toContain(
        'This API sells its readings on the data market',
      )
      const shown = await page.locator('#readings tbody tr').count()
      expect(shown).toBeGreaterThan(0)
      expect(await page.locator('td.verdict[data-verified="true"]').count()).toBe(shown)
      // its earnings per epoch: emission and usage, the usage exactly what the epoch credited
      await page.waitForSelector('#receipts-verified[data-done="true"]')
      const usageBar = page.locator(`#earnings rect.usage[data-epoch="${creditingEpoch}"]`)
      expect(Number(await usageBar.getAttribute('height'))).toBeGreaterThan(0)
      const row = page.locator('#receipts tbody tr').filter({
        has: page.locator('td:first-child', { hasText: new RegExp(`^${creditingEpoch}$`) }),
      })
      expect(await row.locator('td').nth(6).textContent()).toBe(formatUnits(usage, 18))
      // a consumer's deposit (read from the chain by the browser) and spending
      await page.fill('#consumer', consumer)
      await page.click('#consumer-form button')
      await page.waitForSelector('#consumer-view[data-done="true"]')
      expect(await page.locator('#consumer-spent').getAttribute('data-spent')).toBe(owed.toString())
      expect(await page.locator('#consumer-deposit').getAttribute('data-balance')).toBe(
        (depositBefore - owed).toString(),
      )
      expect(await page.locator('#consumer-redemptions tbody tr').count()).toBe(1)
      expect(errors).toEqual([])
    } finally {
      await browser.close()
    }
  })

  it('a consumer following the README with curl and cast pays exactly the price of what it received', async () => {
    const readme = readFileSync('README.md', 'utf8')
    const block = /<!-- paid-query:start -->\n```sh\n([\s\S]*?)```\n<!-- paid-query:end -->/.exec(readme)?.[1]
    expect(block).toBeDefined()
    const work = mkdtempSync(join(tmpdir(), 'depin-readme-'))
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', block as string], {
      cwd: work,
      env: {
        ...process.env,
        API: network.apiUrl,
        RPC: network.rpcUrl,
        DATA: dir,
        PATH: `${join(process.cwd(), 'node_modules', '.bin')}:${process.env.PATH}`,
      },
    })
    rmSync(work, { recursive: true, force: true })
    const lines = stdout.trim().split('\n')
    expect(lines[0]).toBe('["PAYMENT_REQUIRED","3000000000000000","0"]')
    const response = JSON.parse(lines[2] as string) as { payer: Address; price: string; servedCount: string }
    expect(response).toMatchObject({ success: true, price: '3000000000000000', servedCount: '3' })
    expect(JSON.parse(lines[3] as string)).toEqual({
      settled: true,
      cumulativeAmount: '3000000000000000',
      servedCount: '3',
    })
    // the deposit, before the provider redeemed
    expect(lines[4]).toMatch(/^5000000000000000000 \[5e18\]$/)
    const provider = network.provider as NonNullable<EmbeddedNetwork['provider']>
    expect(await provider.redeemer?.redeemDue()).toBe(1)
    const genesis = await admin()
    const [balance] = await getContracts(genesis, network.deployment).dataMarket.read.accountOf([
      response.payer,
    ])
    expect(balance).toBe(parseUnits('5', 18) - 3n * market.prices.reading)
  })

  it("counts the market's charges and refusals, and times every route, at the API's /metrics", async () => {
    const device = fleet.stations[0]?.account.address as Address
    const before = await scrapeMetrics(network.apiUrl)
    const unpaid = await fetch(`${network.apiUrl}/v1/readings?device=${device}&from=0`)
    expect(unpaid.status).toBe(401)
    await new Promise((resolve) => setTimeout(resolve, 1_100)) // one collection serves scrapes for 1 s
    const after = await scrapeMetrics(network.apiUrl)
    const refused = (m: Scrape) => m.value('depin_market_refusals_total', { code: 'SESSION_REQUIRED' }) ?? 0
    expect(refused(after) - refused(before)).toBe(1)
    const timed = (m: Scrape) =>
      m.count('depin_http_request_duration_seconds', { method: 'GET', route: '/v1/readings', status: '401' })
    expect(timed(after) - timed(before)).toBe(1)
    // what the tests above paid for: readings, an aggregate, a stream's readings
    for (const item of ['reading', 'aggregate', 'streamedReading'])
      expect(after.value('depin_market_readings_charged_total', { item }), item).toBeGreaterThan(0)
    expect(
      after.count('depin_http_request_duration_seconds', { route: '/v1/readings', status: '200' }),
    ).toBeGreaterThan(0)
    expect(after.value('depin_settled_epoch')).toBeGreaterThan(0)
    expect(after.value('depin_epoch_lag')).toBeGreaterThanOrEqual(0)
    expect(after.families.get('depin_epoch_lag')?.metrics[0]?.labels?.role).toBe('api')
  })
})
