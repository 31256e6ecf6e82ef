import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Address, Hex } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { hashEpochReport, signEpochReport } from '../chain/signEpochReport.ts'
import type { EpochReport } from '../chain/typedData.ts'
import { signBatchSet, toBatchSetJson } from './batchSets.ts'
import {
  createHttpReportExchange,
  type HttpReportExchange,
  toSignedEpochReportJson,
} from './createHttpReportExchange.ts'
import { createExchangeAdmission } from './exchangeAdmission.ts'
import type { SignedEpochReport } from './reportExchange.ts'

const chainId = 31337
const epochManager = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

const started: { stop(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()))
})

function reportFor(epoch: bigint, variant = 1): EpochReport {
  const byte = variant.toString(16).padStart(2, '0')
  return {
    epoch,
    rulesHash: `0x${'5e'.repeat(32)}`,
    readingsRoot: `0x${byte.repeat(32)}`,
    rewardsRoot: `0x${'ab'.repeat(31)}${byte}`,
    receiptsRoot: `0x${'cd'.repeat(31)}${byte}`,
    total: 900_000_000_000_000_000_000n + BigInt(variant),
    accepted: 1_000 + variant,
  }
}

async function sign(account: PrivateKeyAccount, report: EpochReport): Promise<SignedEpochReport> {
  const { signer, signature } = await signEpochReport({ account, chainId, epochManager, report })
  return {
    epoch: report.epoch,
    report,
    digest: hashEpochReport(chainId, epochManager, report),
    signer,
    signature,
  }
}

const newAccount = () => privateKeyToAccount(generatePrivateKey())

/** Ports free right now: the exchanges need each other's URLs before they start. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve) => {
          const server = createServer()
          server.listen(0, '127.0.0.1', () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}

async function startExchange(
  options: Partial<Parameters<typeof createHttpReportExchange>[0]> = {},
): Promise<HttpReportExchange> {
  const exchange = createHttpReportExchange({ chainId, epochManager, peers: [], ...options })
  await exchange.start()
  started.push(exchange)
  return exchange
}

/** Three exchanges, each peered with the other two. */
async function startTrio(timeoutMs = 2_000): Promise<HttpReportExchange[]> {
  const ports = await freePorts(3)
  const urls = ports.map((p) => `http://127.0.0.1:${p}`)
  return Promise.all(
    ports.map((port, i) => startExchange({ port, timeoutMs, peers: urls.filter((_, j) => j !== i) })),
  )
}

type ResponseBody = {
  result?: string
  reason?: string
  error: { code: string; message: string; details: { recovered?: string; issues?: { path: string }[] } }
}

async function post(url: string, body: unknown, raw = false) {
  const response = await fetch(`${url}/v1/reports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as ResponseBody }
}

async function held(url: string, epoch: bigint) {
  const response = await fetch(`${url}/v1/reports/${epoch}`)
  return ((await response.json()) as { reports: unknown[] }).reports
}

/** A validator set that never changed: every member active all along. */
function validatorSet(members: readonly Address[]) {
  return {
    validators: () =>
      members.map((validator) => ({ validator, status: 'active' as const, bond: 1n, joinedAt: 0n })),
    activeValidatorsAt: () => members.map((m) => m.toLowerCase() as Address),
    lastProcessed: () => undefined,
  }
}

describe('createHttpReportExchange', () => {
  it('delivers a report published on one exchange to the others', async () => {
    const [a, b, c] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    const signed = await sign(newAccount(), reportFor(7n))
    await a.publish(signed)

    for (const exchange of [a, b, c]) {
      const collected = await exchange.collect(7n)
      expect(collected).toEqual([signed])
    }
    // pushed, not only pulled: b holds it without having collected from a
    expect(await held(b.url, 7n)).toEqual([toSignedEpochReportJson(signed)])
    expect(await a.collect(8n)).toEqual([])
  })

  it('merges reports signed by several validators, without duplicates', async () => {
    const [a, b, c] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    const report = reportFor(3n)
    const signed = await Promise.all([
      sign(newAccount(), report),
      sign(newAccount(), report),
      sign(newAccount(), report),
    ])
    await Promise.all([a.publish(signed[0]), b.publish(signed[1]), c.publish(signed[2])])
    await a.publish(signed[0]) // again: still one
    const collected = await c.collect(3n)
    expect(collected).toHaveLength(3)
    expect(new Set(collected.map((s) => s.signer))).toEqual(new Set(signed.map((s) => s.signer)))
    expect(new Set(collected.map((s) => s.digest)).size).toBe(1)
  })

  it('keeps working when a peer is stopped, unreachable or never answers', async () => {
    const [a, b, c] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    await c.stop()
    const signed = await sign(newAccount(), reportFor(11n))
    await expect(a.publish(signed)).resolves.toEqual({ refusals: [] })
    expect(await b.collect(11n)).toEqual([signed])

    // a peer that accepts connections and never answers: bounded by the timeout
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    started.push({
      stop: () =>
        new Promise<void>((resolve) => {
          silent.closeAllConnections()
          silent.close(() => resolve())
        }),
    })
    const [closedPort] = await freePorts(1)
    const errors: string[] = []
    const lonely = await startExchange({
      timeoutMs: 200,
      peers: [
        `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        `http://127.0.0.1:${closedPort}`,
        b.url,
      ],
      onPeerError: ({ peer, action }) => errors.push(`${action} ${peer}`),
    })
    const other = await sign(newAccount(), reportFor(11n, 2))
    await expect(lonely.publish(other)).resolves.toEqual({ refusals: [] })
    const collected = await lonely.collect(11n)
    expect(new Set(collected.map((s) => s.digest))).toEqual(new Set([signed.digest, other.digest]))
    expect(errors).toHaveLength(4) // two peers failed, on publish and on collect
  })

  it('refuses forged and malformed reports with 400 and stores nothing', async () => {
    const exchange = await startExchange()
    const validator = newAccount()
    const signed = await sign(validator, reportFor(5n))
    const json = toSignedEpochReportJson(signed)

    // signed by another key, claiming to be the validator
    const impostor = await sign(newAccount(), reportFor(5n))
    const byOtherKey = await post(exchange.url, { ...json, signature: impostor.signature })
    expect(byOtherKey.status).toBe(400)
    expect(byOtherKey.body.error.code).toBe('REPORT_INVALID')
    expect(byOtherKey.body.error.details.recovered).toBe(impostor.signer)

    // a digest that is not the report's
    const otherDigest = hashEpochReport(chainId, epochManager, reportFor(5n, 2))
    const wrongDigest = await post(exchange.url, { ...json, digest: otherDigest })
    expect(wrongDigest.status).toBe(400)
    expect(wrongDigest.body.error.code).toBe('REPORT_INVALID')

    // the report altered after signing (digest recomputed by the forger)
    const altered = { ...json.report, total: '1' }
    const alteredReport = { ...reportFor(5n), total: 1n }
    const tampered = await post(exchange.url, {
      ...json,
      report: altered,
      digest: hashEpochReport(chainId, epochManager, alteredReport),
    })
    expect(tampered.status).toBe(400)
    expect(tampered.body.error.code).toBe('REPORT_INVALID')

    // the outer epoch does not match the report's
    const otherEpoch = await post(exchange.url, { ...json, epoch: '6' })
    expect(otherEpoch.status).toBe(400)
    expect(otherEpoch.body.error.code).toBe('REPORT_INVALID')

    // the malleated twin (high s) recovers to the same signer but the contract would refuse it
    const s = BigInt(`0x${json.signature.slice(66, 130)}`)
    const v = Number.parseInt(json.signature.slice(130), 16)
    const malleated = `${json.signature.slice(0, 66)}${(N - s).toString(16).padStart(64, '0')}${(v === 27 ? 28 : 27).toString(16)}`
    const highS = await post(exchange.url, { ...json, signature: malleated })
    expect(highS.status).toBe(400)
    expect(highS.body.error.code).toBe('REPORT_INVALID')

    // not a report at all
    const badJson = await post(exchange.url, '{"epoch": "5", ', true)
    expect(badJson.status).toBe(400)
    expect(badJson.body.error.code).toBe('INVALID_BODY')
    const wrongShape = await post(exchange.url, { ...json, epoch: 5, signer: 'me' })
    expect(wrongShape.status).toBe(400)
    expect(wrongShape.body.error.code).toBe('INVALID_BODY')
    expect(wrongShape.body.error.details.issues?.map((i) => i.path)).toEqual(['epoch', 'signer'])
    const tooLarge = await post(exchange.url, { ...json, padding: 'x'.repeat(70_000) })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.body.error.code).toBe('BODY_TOO_LARGE')
    const badEpoch = await fetch(`${exchange.url}/v1/reports/-1`)
    expect(badEpoch.status).toBe(400)

    expect(await held(exchange.url, 5n)).toEqual([])
    expect(await exchange.collect(5n)).toEqual([])
    await expect(exchange.publish({ ...signed, signature: impostor.signature })).rejects.toMatchObject({
      code: 'REPORT_INVALID',
    })
    expect(await exchange.collect(5n)).toEqual([])

    // and the genuine one is stored
    expect((await post(exchange.url, json)).body).toEqual({ result: 'stored' })
    expect((await post(exchange.url, json)).body).toEqual({ result: 'duplicate' })
    expect(await exchange.collect(5n)).toEqual([signed])

    // the held report's digest and signature on another report are no duplicate (found by npm run fuzz)
    for (const report of [
      { ...json.report, total: '1' },
      { ...json.report, epoch: '6' },
      { ...json.report, readingsRoot: `0x${'77'.repeat(32)}` },
    ]) {
      const altered = await post(exchange.url, { ...json, report })
      expect(altered.status, JSON.stringify(report)).toBe(400)
      expect(altered.body.error.code).toBe('REPORT_INVALID')
    }
    expect(await exchange.collect(5n)).toEqual([signed])
  })

  it('checks what it collects from a peer before keeping it', async () => {
    const good = await sign(newAccount(), reportFor(9n))
    const forged = {
      ...toSignedEpochReportJson(await sign(newAccount(), reportFor(9n, 2))),
      signer: good.signer,
    }
    const wrongEpoch = toSignedEpochReportJson(await sign(newAccount(), reportFor(10n)))
    const liar = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json')
      response.end(
        JSON.stringify({ reports: [forged, toSignedEpochReportJson(good), wrongEpoch, { nonsense: true }] }),
      )
    })
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve))
    started.push({ stop: () => new Promise<void>((resolve) => liar.close(() => resolve())) })
    const exchange = await startExchange({
      peers: [`http://127.0.0.1:${(liar.address() as AddressInfo).port}`],
    })
    expect(await exchange.collect(9n)).toEqual([good])
    expect(await held(exchange.url, 9n)).toEqual([toSignedEpochReportJson(good)])
    expect(exchange.equivocations(9n)).toEqual([])
  })

  it('keeps two different reports by one signer and reports the equivocation', async () => {
    const [a, b] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    const twoFaced = newAccount()
    const honest = await sign(newAccount(), reportFor(12n))
    const first = await sign(twoFaced, reportFor(12n, 1))
    const second = await sign(twoFaced, reportFor(12n, 2))
    await a.publish(honest)
    await a.publish(first)
    await b.publish(second)

    const collected = await a.collect(12n)
    expect(collected).toHaveLength(3)
    expect(collected.filter((s) => s.signer === twoFaced.address)).toHaveLength(2)

    const found = a.equivocations(12n)
    expect(found).toHaveLength(1)
    expect(found[0]?.signer).toBe(twoFaced.address)
    expect(new Set([found[0]?.a.digest, found[0]?.b.digest])).toEqual(new Set([first.digest, second.digest]))
    expect(found[0]?.a.signature).not.toBe(found[0]?.b.signature)
    // pushed to b as well: b sees it without collecting
    expect(b.equivocations(12n)).toHaveLength(1)
    expect(a.equivocations(13n)).toEqual([])
  })

  it('drops the oldest epochs beyond keepEpochs', async () => {
    const exchange = await startExchange({ keepEpochs: 2 })
    const validator = newAccount()
    const signed = new Map<bigint, SignedEpochReport>()
    for (const epoch of [1n, 2n, 3n]) {
      signed.set(epoch, await sign(validator, reportFor(epoch)))
      await exchange.publish(signed.get(epoch) as SignedEpochReport)
    }
    expect(await exchange.collect(1n)).toEqual([])
    expect(await exchange.collect(2n)).toEqual([signed.get(2n)])
    expect(await exchange.collect(3n)).toEqual([signed.get(3n)])

    // a report older than every epoch kept is not stored
    const late = await post(exchange.url, toSignedEpochReportJson(signed.get(1n) as SignedEpochReport))
    expect(late.status).toBe(409)
    expect(late.body).toMatchObject({
      result: 'dropped',
      reason: 'EPOCH_TOO_OLD',
      error: { code: 'EPOCH_TOO_OLD' },
    })
    expect(await held(exchange.url, 1n)).toEqual([])

    // a newer epoch pushes out the oldest kept one
    await exchange.publish(await sign(validator, reportFor(4n)))
    expect(await held(exchange.url, 2n)).toEqual([])
    expect(await held(exchange.url, 3n)).toHaveLength(1)
    expect(await held(exchange.url, 4n)).toHaveLength(1)
  })

  it('shares signed batch sets between peers and refuses forged or malformed ones', async () => {
    const [a, b, c] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    const hashes = [`0x${'01'.repeat(32)}`, `0x${'02'.repeat(32)}`] as Hex[]
    const mine = await signBatchSet({
      account: newAccount(),
      chainId,
      epochManager,
      epoch: 4n,
      batches: hashes,
    })
    await a.announceBatches(mine)
    for (const exchange of [a, b, c]) expect(await exchange.collectBatchSets(4n)).toEqual([mine])
    expect(await b.collectBatchSets(5n)).toEqual([])

    const postSet = (body: unknown) =>
      fetch(`${b.url}/v1/batch-sets`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const forged = { ...toBatchSetJson(mine), batches: [hashes[0]] }
    const refused = await postSet(forged)
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as ResponseBody).error.code).toBe('BATCH_SET_INVALID')
    const malformed = await postSet({ ...toBatchSetJson(mine), epoch: -1 })
    expect(malformed.status).toBe(400)
    expect(((await malformed.json()) as ResponseBody).error.code).toBe('INVALID_BODY')
    const tooMany = await postSet({
      ...toBatchSetJson(mine),
      batches: Array.from({ length: 65 }, (_, i) => `0x${i.toString(16).padStart(64, '0')}`),
    })
    expect(tooMany.status).toBe(400)
    expect(await b.collectBatchSets(4n)).toEqual([mine])
    const badEpoch = await fetch(`${b.url}/v1/batch-sets/x`)
    expect(badEpoch.status).toBe(400)
  })

  it('serves its batches by content address to peers, who check them', async () => {
    const [a, b] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    const bytes = new TextEncoder().encode('a sealed batch\n')
    const hash = `0x${'cd'.repeat(32)}` as Hex
    a.serveBatches((wanted) => (wanted === hash ? bytes : undefined))
    expect(await b.fetchBatch(hash, () => true)).toEqual(bytes)
    // bytes that fail the caller's check (the content address) are not returned
    expect(await b.fetchBatch(hash, () => false)).toBeUndefined()
    expect(await b.fetchBatch(`0x${'ef'.repeat(32)}`, () => true)).toBeUndefined()
    const response = await fetch(`${a.url}/v1/batches/by-hash/${hash}`)
    expect(response.headers.get('x-batch-hash')).toBe(hash)
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes)
    expect((await fetch(`${a.url}/v1/batches/by-hash/0x12`)).status).toBe(400)
  })

  it('serves the cumulative rewards it holds, and a peer keeps only amounts that pass its check', async () => {
    const [a, b] = (await startTrio()) as [HttpReportExchange, HttpReportExchange, HttpReportExchange]
    const amounts = new Map([
      [`0x${'aa'.repeat(20)}`, 10n ** 30n],
      [`0x${'bb'.repeat(20)}`, 1n],
    ])
    a.serveCumulative((epoch) => (epoch === 9n ? amounts : undefined))
    expect(await b.fetchCumulative(9n, () => true)).toEqual(amounts)
    expect(await b.fetchCumulative(9n, (m) => m.get(`0x${'bb'.repeat(20)}`) === 2n)).toBeUndefined()
    expect(await b.fetchCumulative(8n, () => true)).toBeUndefined()
    expect((await fetch(`${a.url}/v1/cumulative/8`)).status).toBe(404)
  })

  it('also talks to the peers it discovers, never to itself', async () => {
    const [b, c] = [await startExchange(), await startExchange()]
    let discovered: string[] = []
    const a = await startExchange({
      discoverPeers: () => discovered,
      advertisedUrl: 'http://a.example:9101',
    })
    discovered = [`${b.url}/`, c.url, a.url, 'http://a.example:9101']
    const signed = await sign(newAccount(), reportFor(21n))
    await a.publish(signed)
    expect(await held(b.url, 21n)).toEqual([toSignedEpochReportJson(signed)])
    expect(await held(c.url, 21n)).toEqual([toSignedEpochReportJson(signed)])
    discovered = []
    const later = await sign(newAccount(), reportFor(22n))
    await a.publish(later)
    expect(await held(b.url, 22n)).toEqual([])
  })

  it("keeps an epoch's items only from the validators active at its end, once the indexer passed it", async () => {
    const [early, late, slashed] = [newAccount(), newAccount(), newAccount()]
    const lower = (a: { address: Address }) => a.address.toLowerCase() as Address
    // epoch 99 ended at 1,000: early and slashed were active then; late joined after it, slashed
    // was slashed after it; epoch 100 has not ended for the indexer, so the set of now stands in
    const admit = createExchangeAdmission({
      validators: {
        validators: () => [
          { validator: early.address, status: 'active', bond: 1n, joinedAt: 0n },
          { validator: late.address, status: 'active', bond: 1n, joinedAt: 1_001n },
          { validator: slashed.address, status: 'slashed', bond: 0n, joinedAt: 0n },
        ],
        activeValidatorsAt: (before) => (before <= 1_000n ? [lower(early), lower(slashed)] : [lower(early)]),
        lastProcessed: () => ({ block: 7n, timestamp: 1_002n }),
      },
      genesisTime: 0n,
      epochLength: 10n,
      clock: () => 1_003n,
    })
    const code = (signer: { address: Address }, epoch: bigint) => {
      const verdict = admit({ epoch, signer: signer.address })
      return verdict.type === 'refused' ? verdict.code : 'admitted'
    }
    expect(code(early, 99n)).toBe('admitted')
    expect(code(slashed, 99n)).toBe('admitted') // it signed while active: evidence
    expect(code(late, 99n)).toBe('SIGNER_NOT_VALIDATOR')
    expect(code(late, 100n)).toBe('admitted')
    expect(code(slashed, 100n)).toBe('SIGNER_NOT_VALIDATOR')
  })

  it('refuses, before any signature check, items of non-validators and of epochs outside the window', async () => {
    const validator = newAccount()
    const current = 100n
    const admit = createExchangeAdmission({
      validators: validatorSet([validator.address]),
      genesisTime: 0n,
      epochLength: 10n,
      clock: () => current * 10n + 3n,
    })
    const exchange = await startExchange({ admit })
    // a throwaway key: refused with a code, not kept, whatever the signature
    const stranger = await post(
      exchange.url,
      toSignedEpochReportJson(await sign(newAccount(), reportFor(99n))),
    )
    expect(stranger.status).toBe(403)
    expect(stranger.body.error.code).toBe('SIGNER_NOT_VALIDATOR')
    // refused before any signature is checked: items whose signature is not even the named
    // signer's get the same early answer, not REPORT_INVALID (a recovery was never made)
    const notEvenSigned = toSignedEpochReportJson(await sign(newAccount(), reportFor(99n)))
    const early = await post(exchange.url, { ...notEvenSigned, signer: newAccount().address })
    expect([early.status, early.body.error.code]).toEqual([403, 'SIGNER_NOT_VALIDATOR'])
    const earlyWindow = await post(exchange.url, {
      ...toSignedEpochReportJson(await sign(newAccount(), reportFor(5_000n))),
      signer: validator.address,
    })
    expect([earlyWindow.status, earlyWindow.body.error.code]).toEqual([422, 'EPOCH_OUT_OF_WINDOW'])
    // a validator's, for a far-future epoch and for one long gone: refused
    for (const epoch of [102n, 1_000_000n, 83n]) {
      const answer = await post(
        exchange.url,
        toSignedEpochReportJson(await sign(validator, reportFor(epoch))),
      )
      expect(answer.status, `epoch ${epoch}`).toBe(422)
      expect(answer.body.error.code).toBe('EPOCH_OUT_OF_WINDOW')
      expect(await held(exchange.url, epoch)).toEqual([])
    }
    // the same validator's for the current window: kept
    for (const epoch of [84n, 99n, 100n, 101n]) {
      const answer = await post(
        exchange.url,
        toSignedEpochReportJson(await sign(validator, reportFor(epoch))),
      )
      expect(answer.status, `epoch ${epoch}`).toBe(200)
      expect(await held(exchange.url, epoch)).toHaveLength(1)
    }
    // a forged signature claiming to be the validator: refused (400), not kept
    const forged = toSignedEpochReportJson(await sign(newAccount(), reportFor(98n)))
    const answer = await post(exchange.url, { ...forged, signer: validator.address })
    expect(answer.status).toBe(400)
    expect(await held(exchange.url, 98n)).toEqual([])
    // batch sets pass the same gate
    const strangerSet = await fetch(`${exchange.url}/v1/batch-sets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        toBatchSetJson(
          await signBatchSet({ account: newAccount(), chainId, epochManager, epoch: 99n, batches: [] }),
        ),
      ),
    })
    expect(strangerSet.status).toBe(403)
  })

  it('does not keep what a peer passes on from non-validators', async () => {
    const validator = newAccount()
    const admit = createExchangeAdmission({
      validators: validatorSet([validator.address]),
      genesisTime: 0n,
      epochLength: 10n,
      clock: () => 1_003n,
    })
    const ports = await freePorts(2)
    const [a, b] = [
      await startExchange({ port: ports[0] as number, peers: [`http://127.0.0.1:${ports[1]}`], admit }),
      // an open exchange (no gate) holding a stranger's report and the validator's
      await startExchange({ port: ports[1] as number }),
    ] as [HttpReportExchange, HttpReportExchange]
    const own = await sign(validator, reportFor(99n))
    await b.publish(await sign(newAccount(), reportFor(99n)))
    await b.publish(own)
    expect(await a.collect(99n)).toEqual([own])
    expect(await held(a.url, 99n)).toHaveLength(1)
  })

  it("answers which peers refused a validator's own item", async () => {
    const validator = newAccount()
    const gate = (members: string[]) =>
      createExchangeAdmission({
        validators: validatorSet(members as Address[]),
        genesisTime: 0n,
        epochLength: 10n,
        clock: () => 1_003n,
      })
    const ports = await freePorts(3)
    const url = (i: number) => `http://127.0.0.1:${ports[i]}`
    const [a] = [
      await startExchange({ port: ports[0] as number, peers: [url(1), url(2)] }),
      await startExchange({ port: ports[1] as number, admit: gate([validator.address]) }),
      // this peer does not (yet) know the validator
      await startExchange({ port: ports[2] as number, admit: gate([]) }),
    ]
    const outcome = await (a as HttpReportExchange).publish(await sign(validator, reportFor(100n)))
    expect(outcome.refusals).toEqual([
      { peer: url(2), code: 'SIGNER_NOT_VALIDATOR', message: expect.stringContaining(validator.address) },
    ])
  })

  it('rate-limits each source address with a typed 429', async () => {
    const exchange = await startExchange({ rateLimit: { postsPerSecond: 5, getsPerSecond: 5 } })
    const statuses: number[] = []
    let limited: ResponseBody | undefined
    for (let i = 0; i < 12; i++) {
      const answer = await post(exchange.url, '{}', true)
      statuses.push(answer.status)
      if (answer.status === 429) limited = answer.body
    }
    expect(statuses.filter((s) => s === 400).length).toBeLessThanOrEqual(5)
    expect(statuses).toContain(429)
    expect(limited?.error.code).toBe('RATE_LIMITED')
    // posts and gets are counted apart: a flood of posts leaves peers able to pull
    expect((await fetch(`${exchange.url}/v1/reports/1`)).status).toBe(200)
  })

  it("puts its metrics behind the GETs' limit: a stranger flooding /metrics gets 429s", async () => {
    const exchange = await startExchange({ rateLimit: { getsPerSecond: 5 } })
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      const response = await fetch(`${exchange.url}/metrics`)
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0)
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5)
    expect(statuses).toContain(429)
  })

  it('serves epoch records to a stranger as few a second as batches, and refuses bad or far epochs with a typed error', async () => {
    const exchange = await startExchange({ rateLimit: { batchesPerSecond: 3 } })
    const asked: bigint[] = []
    exchange.serveEpochRecords((epoch) => {
      asked.push(epoch)
      return epoch === 5n ? new TextEncoder().encode('{"version":1}') : undefined
    })
    const get = (epoch: string) => fetch(`${exchange.url}/v1/epoch-records/${epoch}`)
    const first = await get('5')
    expect(first.status).toBe(200)
    expect(await first.text()).toBe('{"version":1}')
    const far = await get('18446744073709551615')
    expect(far.status).toBe(404)
    expect(await far.json()).toMatchObject({ error: { code: 'EPOCH_RECORD_NOT_FOUND' } })
    const malformed = await get('-1')
    expect(malformed.status).toBe(400)
    await malformed.arrayBuffer()
    // a loop of requests: past the budget every answer is a 429, and the source is not asked
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) {
      const response = await get('5')
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    expect(statuses).toContain(429)
    expect(asked.length).toBeLessThanOrEqual(3)
  })

  it('serves batches by content address at most a few a second to one source', async () => {
    const exchange = await startExchange({ rateLimit: { batchesPerSecond: 3 } })
    const bytes = new TextEncoder().encode('a batch\n')
    exchange.serveBatches(() => bytes)
    const statuses: number[] = []
    for (let i = 0; i < 6; i++)
      statuses.push((await fetch(`${exchange.url}/v1/batches/by-hash/0x${'ab'.repeat(32)}`)).status)
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200])
    expect(statuses).toContain(429)
    // the other routes keep their own budget
    expect((await fetch(`${exchange.url}/v1/reports/1`)).status).toBe(200)
  })
})
