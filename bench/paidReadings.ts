/**
 * Paid against free `GET /v1/readings` (the data market's paywall, src/market/createPaywall.ts):
 * requests per second of an API that charges, each request from a consumer signed in with SIWE
 * carrying a fresh X-PAYMENT voucher that settles everything it was served before (as
 * createMarketClient sends them), against an API without a paywall over the same stores, in the
 * same process and interleaved (free, paid, paid, free, free, paid), so that the machine's drift
 * weighs on both alike. `npx tsx bench/paidReadings.ts [timed requests per mode]`.
 *
 * Real components: anvil with the six contracts, epochs settled on-chain with the readings roots
 * of the validator store's accepted readings, the indexer synced to the chain, the consumers'
 * deposits on the DataMarket (read by the paywall through `readConsumerFunds`, trusted 5 s as by
 * default), the provider's SQLite store (WAL, synchronous FULL). Every answer carries 100 readings
 * with their proofs (epochs of 10,000 readings: proofs of 14 hashes).
 *
 * Measuring the server, not the client: the vouchers are computed before the timed part (each
 * consumer's requests are known in advance, so its served commitment after each answer is too)
 * and signed natively with libsecp256k1 (viem's signing costs about 1 ms). The load comes from a
 * worker thread over loopback HTTP (keep-alive, the answer's body counted and dropped), one
 * sequential stream of requests per consumer, 4 at once; the free API gets the very same
 * requests, headers included, so the client's share is the same in both. Besides the rates, the
 * server's main-thread cost of a request is given from its event loop's active time.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type Address, bytesToHex, getAddress, type Hex, hexToBytes, keccak256, toHex } from 'viem'
import { createSiweMessage } from 'viem/siwe'
import { type ApiServer, createApiServer } from '../src/api/createApiServer.ts'
import { loadBlueprint } from '../src/blueprint/loadBlueprint.ts'
import { NO_RULES_HASH } from '../src/chain/deployment.ts'
import type { EpochReport } from '../src/chain/typedData.ts'
import { loadKeccak256 } from '../src/crypto/keccak.ts'
import { createIndexer } from '../src/indexer/createIndexer.ts'
import { createPaywall, VOUCHER_SCHEME, X402_VERSION } from '../src/market/createPaywall.ts'
import { openProviderStore } from '../src/market/providerStore.ts'
import { readConsumerFunds } from '../src/market/readConsumerFunds.ts'
import { createSiweSessions } from '../src/market/siweSessions.ts'
import {
  extendServed,
  hashVoucher,
  NOTHING_SERVED,
  type SignedVoucher,
  signedVoucherToJson,
  type Voucher,
} from '../src/market/voucher.ts'
import { createReadingHasher } from '../src/readings/createReadingHasher.ts'
import { buildReadingsTree } from '../src/rewards/readingsTree.ts'
import { type AcceptedReading, createValidatorStore } from '../src/validator/validatorStore.ts'
import {
  joinValidators,
  signReport,
  startTestNetwork,
  type TestNetwork,
  WAD,
} from '../test/helpers/testNetwork.ts'

type Secp256k1 = {
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array
}
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1

/** Readings in each answer (the route's default limit). */
const PER_ANSWER = 100
/** Consumers, each one sequential stream of requests. */
const CLIENTS = 4
const ROUNDS = 3
/** Untimed requests per consumer before the first round (JIT, the trees of the epochs, SQLite pages). */
const WARM_UP = 20

export type PaidReadingsMode = {
  requests: number
  seconds: number
  perSecond: number
  /** The server's main-thread time per request (event-loop active time), µs. */
  serverMicros: number
}

export type BenchPaidReadingsResult = {
  free: PaidReadingsMode
  paid: PaidReadingsMode
  /** paid.perSecond / free.perSecond */
  ratio: number
  clients: number
  readingsPerAnswer: number
  answerKB: number
  /** The proofs' lengths (hashes) in the answers. */
  proofLengths: number[]
  storeReadings: number
  epochReadings: number
}

const signNatively = (secret: Uint8Array, digest: Hex): Hex => {
  const { signature, recid } = secp256k1.ecdsaSign(hexToBytes(digest), secret)
  const out = new Uint8Array(65)
  out.set(signature)
  out[64] = 27 + recid
  return bytesToHex(out)
}

/**
 * `epochs` settled epochs of `perEpoch` accepted readings each (signed natively by 500 devices),
 * in a validator store, the readings roots on-chain, an indexer synced to them.
 */
async function settleEpochs(net: TestNetwork, dir: string, epochs: number, perEpoch: number) {
  const keccak = await loadKeccak256()
  const hasher = await createReadingHasher(net.chainId, net.deployment.contracts.deviceRegistry)
  const [validator] = await joinValidators(net, 1)
  const deviceCount = Math.min(500, perEpoch)
  const devices = Array.from({ length: deviceCount }, (_, d) => {
    const secret = keccak(new TextEncoder().encode(`bench paid device ${d}`))
    const address = getAddress(
      bytesToHex(keccak(secp256k1.publicKeyCreate(secret, false).subarray(1)).subarray(12)),
    )
    return { secret, address, seq: 0n }
  })
  const store = createValidatorStore(join(dir, 'validator.db'))
  const { genesisTime, epochLength } = net.deployment
  for (let e = 1n; e <= BigInt(epochs); e++) {
    const start = genesisTime + e * epochLength
    const readings: AcceptedReading[] = []
    for (let i = 0; i < perEpoch; i++) {
      const d = devices[i % deviceCount] as (typeof devices)[number]
      d.seq++
      // spread over the epoch's first 58 seconds, in order
      const time = start + 1n + BigInt(Math.floor((i * 58) / perEpoch))
      const unsigned = {
        device: d.address,
        seq: d.seq,
        time,
        values: [2150n + BigInt(i % 97), 5520n, 123n, 10132n],
      }
      const digest = bytesToHex(hasher(unsigned))
      readings.push({ reading: { ...unsigned, signature: signNatively(d.secret, digest) }, digest })
    }
    readings.sort((a, b) => (a.reading.device.toLowerCase() < b.reading.device.toLowerCase() ? -1 : 1))
    const tree = buildReadingsTree(
      readings.map((r) => hexToBytes(r.digest)),
      keccak,
    )
    const report: EpochReport = {
      epoch: e,
      rulesHash: NO_RULES_HASH,
      readingsRoot: tree.root,
      rewardsRoot: keccak256(toHex(`rewards ${e}`)),
      receiptsRoot: keccak256(toHex(`receipts ${e}`)),
      total: 0n,
      accepted: readings.length,
    }
    await net.closeEpoch(e)
    await net.send(
      net.contracts.epochManager.write.submitReport([
        report,
        await signReport(net, [validator as never], report),
      ]),
    )
    store.saveResult(
      {
        epoch: e,
        report,
        digest: keccak256(toHex(`digest ${e}`)),
        signature: `0x${'11'.repeat(65)}`,
        cumulative: new Map(),
        rejectedByReason: {},
        batchHashes: [],
      },
      [],
      readings,
    )
  }
  const indexer = createIndexer({
    publicClient: net.admin.publicClient,
    deployment: net.deployment,
    dbPath: join(dir, 'indexer.db'),
  })
  await indexer.syncOnce()
  const windows = Array.from({ length: epochs }, (_, e) => genesisTime + BigInt(e + 1) * epochLength)
  return { store, indexer, windows }
}

type Request = { path: string; headers: Record<string, string> }
type PhaseResult = {
  seconds: number
  bytes: number
  failure?: { status: number; path: string; body: string }
}

/** The load generator: runs each list's requests in order, the lists at once, over keep-alive HTTP. */
const LOAD_WORKER = `
const { parentPort } = require('node:worker_threads')
const http = require('node:http')
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
const get = (port, path, headers) => new Promise((resolve, reject) => {
  const request = http.request({ host: '127.0.0.1', port, path, headers, agent }, (response) => {
    let bytes = 0
    let body = ''
    response.on('data', (chunk) => {
      bytes += chunk.length
      if (response.statusCode !== 200 && body.length < 2000) body += chunk
    })
    response.on('end', () => resolve({ status: response.statusCode, bytes, body }))
    response.on('error', reject)
  })
  request.on('error', reject)
  request.end()
})
parentPort.on('message', async ({ port, lists }) => {
  const started = performance.now()
  let bytes = 0
  let failure
  await Promise.all(lists.map(async (list) => {
    for (const { path, headers } of list) {
      const answer = await get(port, path, headers)
      bytes += answer.bytes
      if (answer.status !== 200) {
        failure = failure ?? { status: answer.status, path, body: answer.body }
        return
      }
    }
  }))
  parentPort.postMessage({ seconds: (performance.now() - started) / 1000, bytes, failure })
})`

/** Measures paid and free `GET /v1/readings` for `requests` timed requests each. */
export async function benchPaidReadings(
  requests = 3_000,
  epochs = 4,
  perEpoch = Number(process.env.BENCH_PAID_EPOCH_READINGS ?? 10_000),
): Promise<BenchPaidReadingsResult> {
  const perRound = Math.max(1, Math.round(requests / (ROUNDS * CLIENTS)))
  const perConsumer = WARM_UP + ROUNDS * perRound
  const blueprint = loadBlueprint('blueprints/environment.yaml')
  const prices = blueprint.market?.prices
  if (!prices) throw new Error('the environment blueprint names no market')
  const keccak = await loadKeccak256()
  const dir = mkdtempSync(join(tmpdir(), 'depin-bench-paid-'))
  const net = await startTestNetwork()
  const servers: ApiServer[] = []
  const worker = new Worker(LOAD_WORKER, { eval: true })
  let closeStores = async () => {}
  try {
    const { store, indexer, windows } = await settleEpochs(net, dir, epochs, perEpoch)
    const market = net.deployment.contracts.dataMarket
    const domain = { chainId: net.chainId, market }
    const provider = await net.actor()
    await net.send(net.contracts.dataMarket.write.addProvider([provider.address, 'http://127.0.0.1:1/']))
    const consumers = []
    const deposit = BigInt(perConsumer * PER_ANSWER) * prices.reading * 2n + WAD
    for (let c = 0; c < CLIENTS; c++) {
      const who = await net.actor()
      await net.send(net.contracts.depinToken.write.transfer([who.address, deposit]))
      await net.send(who.contracts.depinToken.write.approve([market, deposit]), who.clients)
      await net.send(who.contracts.dataMarket.write.deposit([deposit]), who.clients)
      consumers.push(who)
    }
    const providerStore = openProviderStore(join(dir, 'provider.db'))
    closeStores = async () => {
      await indexer.stop()
      await providerStore.close()
      store.close()
    }
    const paywall = createPaywall({
      store: providerStore,
      sessions: createSiweSessions({ chainId: net.chainId }),
      keccak,
      domain,
      provider: provider.address,
      token: net.deployment.contracts.depinToken,
      prices,
      readFunds: readConsumerFunds(net.admin.publicClient, market, provider.address),
    })
    // the rate limits' cost is in both, their limits out of the way
    const rateLimit = { perIp: 1e9, perConsumer: 1e9 }
    const common = {
      deployment: net.deployment,
      blueprint,
      indexer: indexer.store,
      rewards: store,
      rateLimit,
    }
    const free = await createApiServer(common)
    const paid = await createApiServer({ ...common, paywall })
    servers.push(free, paid)
    await free.start()
    await paid.start()

    // the queries: windows of the settled epochs, each answered with 100 readings (first asked
    // untimed, of the free API in process, for their digests)
    const digestsOf = new Map<string, Hex[]>()
    const proofLengths = new Set<number>()
    for (const start of windows) {
      for (let s = 1n; s <= 58n; s++) {
        const path = `/v1/readings?from=${start + s}&to=${start + s + 60n}&limit=${PER_ANSWER}`
        const answer = await free.server.inject({ method: 'GET', url: path })
        if (answer.statusCode !== 200) throw new Error(`${path}: ${answer.statusCode} ${answer.body}`)
        const body = answer.json() as { readings: { digest: Hex; proof: Hex[] }[]; unverifiable: string[] }
        for (const r of body.readings) proofLengths.add(r.proof.length)
        if (body.readings.length === PER_ANSWER && body.unverifiable.length === 0)
          digestsOf.set(
            path,
            body.readings.map((r) => r.digest),
          )
      }
    }
    const paths = [...digestsOf.keys()]
    if (paths.length < 10) throw new Error(`only ${paths.length} windows hold ${PER_ANSWER} readings`)

    // each consumer signs in, and signs beforehand the voucher of each of its requests: the one
    // settling every answer before it
    const host = new URL(paid.url).host
    const lists: Request[][] = []
    for (const [c, who] of consumers.entries()) {
      const { nonce } = (await (await fetch(`${paid.url}/v1/market/nonce`)).json()) as { nonce: string }
      const message = createSiweMessage({
        address: who.address,
        chainId: net.chainId,
        domain: host,
        nonce,
        uri: paid.url,
        version: '1',
        expirationTime: new Date(Date.now() + 60 * 60_000),
      })
      const signature = await who.account.signMessage?.({ message })
      const session = await fetch(`${paid.url}/v1/market/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message, signature }),
      })
      const { token } = (await session.json()) as { token: string }
      if (session.status !== 200 || !token) throw new Error(`signing in failed: ${session.status}`)
      const secret = hexToBytes(who.privateKey)
      const list: Request[] = []
      let served = NOTHING_SERVED
      for (let k = 0; k < perConsumer; k++) {
        const path = paths[(c * 17 + k) % paths.length] as string
        const voucher: Voucher = {
          consumer: who.address,
          provider: provider.address,
          cumulativeAmount: BigInt(k * PER_ANSWER) * prices.reading,
          served,
          servedCount: BigInt(k * PER_ANSWER),
        }
        const signed: SignedVoucher = {
          ...voucher,
          signature: signNatively(secret, hashVoucher(domain, voucher)),
        }
        const payment = {
          x402Version: X402_VERSION,
          scheme: VOUCHER_SCHEME,
          network: `eip155:${net.chainId}`,
          payload: signedVoucherToJson(signed),
        }
        list.push({
          path,
          headers: {
            authorization: `Bearer ${token}`,
            'x-payment': Buffer.from(JSON.stringify(payment)).toString('base64'),
          },
        })
        served = extendServed(keccak, served, digestsOf.get(path) as Hex[])
      }
      lists.push(list)
    }

    const load = (server: ApiServer, part: Request[][]) =>
      new Promise<PhaseResult>((resolve, reject) => {
        worker.once('error', reject)
        worker.once('message', (result: PhaseResult) => {
          worker.off('error', reject)
          resolve(result)
        })
        worker.postMessage({ port: Number(new URL(server.url).port), lists: part })
      })
    const totals = {
      free: { requests: 0, seconds: 0, activeMs: 0, bytes: 0 },
      paid: { requests: 0, seconds: 0, activeMs: 0, bytes: 0 },
    }
    const phase = async (mode: 'free' | 'paid', from: number, count: number, timed: boolean) => {
      const part = lists.map((list) => list.slice(from, from + count))
      const before = performance.eventLoopUtilization()
      const result = await load(mode === 'free' ? free : paid, part)
      const active = performance.eventLoopUtilization(before).active
      if (result.failure)
        throw new Error(
          `${mode} ${result.failure.path}: ${result.failure.status} ${result.failure.body.slice(0, 500)}`,
        )
      if (!timed) return
      const total = totals[mode]
      total.requests += count * CLIENTS
      total.seconds += result.seconds
      total.activeMs += active
      total.bytes += result.bytes
    }
    // warm-up; then rounds, their order alternating so that drift weighs on both modes alike
    await phase('free', 0, WARM_UP, false)
    await phase('paid', 0, WARM_UP, false)
    for (let r = 0; r < ROUNDS; r++) {
      const from = WARM_UP + r * perRound
      const order: ('free' | 'paid')[] = r % 2 === 0 ? ['free', 'paid'] : ['paid', 'free']
      for (const mode of order) await phase(mode, from, perRound, true)
    }

    // every paid request was served and charged exactly; the last voucher redeems on-chain
    for (const who of consumers) {
      const channel = providerStore.channel(who.address)
      const owed = BigInt(perConsumer * PER_ANSWER) * prices.reading
      if (channel.owed !== owed || channel.servedCount !== BigInt(perConsumer * PER_ANSWER))
        throw new Error(`${who.address}: the provider's channel is ${channel.owed}/${channel.servedCount}`)
    }
    const last = providerStore.channel(consumers[0]?.address as Address).voucher as SignedVoucher
    await net.send(
      provider.contracts.dataMarket.write.redeem([
        last.consumer,
        last.cumulativeAmount,
        last.served,
        last.servedCount,
        last.signature,
      ]),
      provider.clients,
    )

    const summary = (t: (typeof totals)['free']): PaidReadingsMode => ({
      requests: t.requests,
      seconds: t.seconds,
      perSecond: t.requests / t.seconds,
      serverMicros: (t.activeMs * 1000) / t.requests,
    })
    const freeMode = summary(totals.free)
    const paidMode = summary(totals.paid)
    return {
      free: freeMode,
      paid: paidMode,
      ratio: paidMode.perSecond / freeMode.perSecond,
      clients: CLIENTS,
      readingsPerAnswer: PER_ANSWER,
      answerKB: totals.free.bytes / totals.free.requests / 1024,
      proofLengths: [...proofLengths].sort((a, b) => a - b),
      storeReadings: epochs * perEpoch,
      epochReadings: perEpoch,
    }
  } finally {
    await worker.terminate()
    for (const server of servers) await server.stop()
    await closeStores()
    await net.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchPaidReadings(Number(process.argv[2] ?? 3_000))
  const line = (name: string, m: PaidReadingsMode) =>
    `${name}: ${m.requests} requests in ${m.seconds.toFixed(2)} s = ${Math.round(m.perSecond)} /s, server ${Math.round(m.serverMicros)} µs each`
  console.log(line('free', r.free))
  console.log(line('paid', r.paid))
  console.log(
    `ratio paid/free ${r.ratio.toFixed(2)}; answers of ${r.readingsPerAnswer} readings, ${r.answerKB.toFixed(0)} KB`,
  )
}
