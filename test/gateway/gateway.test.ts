import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verifyTypedData, Wallet } from 'ethers'
import { type Address, bytesToHex, keccak256, toBytes } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Blueprint, loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { decodeBatch } from '../../src/gateway/batchFormat.ts'
import { createGateway, type Gateway, type GatewayErrorEvent } from '../../src/gateway/createGateway.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { gatewayVerdictTypedData } from '../../src/readings/gatewayVerdict.ts'
import { toReadingJson } from '../../src/readings/reading.ts'
import { signReading } from '../../src/readings/signReading.ts'
import { offChainDeployment } from '../helpers/offChainDeployment.ts'
import { storedReadingCount } from '../helpers/storedReadingCount.ts'
import { testDatabase } from '../helpers/testDatabase.ts'

const blueprint: Blueprint = loadBlueprint('blueprints/environment.yaml')
const GENESIS = 1_800_000_000n
const deployment = offChainDeployment(GENESIS, 30n)

// The registry as the indexer would show it: an in-process lookup table of the test's devices.
const registry = new Map<string, { deviceClass: number; status: 'active' | 'retired' }>()
const devices = { getDevice: (d: Address) => registry.get(d.toLowerCase()) }

let dir: string
/** The gateway's store (a SQLite file in dir, or a PostgreSQL schema): kept across its restarts in a test. */
let database: string
let now: bigint
let gateway: Gateway
const stations: PrivateKeyAccount[] = []
/** The gateway operator's key, which signs its verdicts. */
const operator = privateKeyToAccount(generatePrivateKey())
/** Failures the gateway reported and carried on after. */
let errors: GatewayErrorEvent[] = []
/** When set, the gateway's clock fails with it (as a broken time source would). */
let clockFailure: Error | undefined

async function startGateway() {
  gateway = await createGateway({
    blueprint,
    deployment,
    devices,
    database,
    clock: () => {
      if (clockFailure) throw clockFailure
      return now
    },
    operator,
    sealIntervalMs: 20,
    onError: (event) => errors.push(event),
  })
  await gateway.start()
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-gw-'))
  database = testDatabase(dir, 'gateway')
  now = GENESIS + 10n * 30n + 5n // 5 s into epoch 10
  errors = []
  clockFailure = undefined
  registry.clear()
  stations.length = 0
  for (let i = 0; i < 3; i++) {
    const account = privateKeyToAccount(generatePrivateKey())
    stations.push(account)
    registry.set(account.address.toLowerCase(), { deviceClass: 1, status: 'active' })
  }
  await startGateway()
})
afterEach(async () => {
  await gateway.stop()
  rmSync(dir, { recursive: true, force: true })
})
afterAll(() => registry.clear())

const sign = (account: PrivateKeyAccount, seq: bigint, time = now, values = [2150n, 5520n, 123n, 10132n]) =>
  signReading({
    account,
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    seq,
    time,
    values,
  })

async function post(body: unknown, raw?: string) {
  const response = await fetch(`${gateway.url}/v1/readings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  })
  const {
    request: _,
    gateway: __,
    signature: ___,
    ...json
  } = (await response.json()) as Record<string, unknown>
  return { status: response.status, json: json as Record<string, unknown> & { results?: unknown[] } }
}

/** Posts `text` as it is, and returns the answer with its signature fields. */
async function postSigned(text: string) {
  const response = await fetch(`${gateway.url}/v1/readings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: text,
  })
  return {
    status: response.status,
    json: (await response.json()) as Record<string, unknown> & { results?: unknown[] },
  }
}

const storedCount = () => storedReadingCount(database)

/** Polls `condition` until it holds, or fails after `timeoutMs`. */
async function waitForCondition(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('POST /v1/readings', () => {
  it('accepts signed readings and stores them durably before answering', async () => {
    const batch = await Promise.all(stations.map((s) => sign(s, 1n)))
    const { status, json } = await post({ readings: batch.map(toReadingJson) })
    expect(status).toBe(200)
    expect(json).toEqual({
      results: [0, 1, 2].map((index) => ({ index, status: 'accepted' })),
      accepted: 3,
      rejected: 0,
    })
    expect(await storedCount()).toBe(3)
  })

  it("signs every verdict with the operator's key, over the request's bytes and each reading", async () => {
    const [a, b] = stations as [PrivateKeyAccount, PrivateKeyAccount]
    const readings = [await sign(a, 1n), await sign(b, 1n), await sign(a, 1n)]
    // any bytes the body arrives in: the signature covers exactly these
    const text = `{ "id": "r1",\n  "readings": ${JSON.stringify([...readings.map(toReadingJson), { seq: 'x' }])} }`
    const { status, json } = await postSigned(text)
    expect(status).toBe(200)
    expect(json).toMatchObject({ request: keccak256(toBytes(text)), gateway: operator.address })
    const digest = await createReadingHasher(deployment.chainId, deployment.contracts.deviceRegistry)
    const entry = (r: (typeof readings)[number], status: string, reason: string) => ({
      device: r.device,
      seq: r.seq,
      digest: bytesToHex(digest(r)),
      status: status as 'accepted',
      reason,
    })
    const typedData = gatewayVerdictTypedData({
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      verdict: {
        request: keccak256(toBytes(text)),
        status: 200,
        code: '',
        readings: [
          entry(readings[0] as (typeof readings)[number], 'accepted', ''),
          entry(readings[1] as (typeof readings)[number], 'accepted', ''),
          entry(readings[2] as (typeof readings)[number], 'accepted', 'DUPLICATE'),
          {
            device: '0x0000000000000000000000000000000000000000',
            seq: 0n,
            digest: `0x${'00'.repeat(32)}`,
            status: 'rejected',
            reason: 'SCHEMA_INVALID',
          },
        ],
      },
    })
    // checked with a second EIP-712 implementation, from the documented typed-data JSON
    const { EIP712Domain: _, ...types } = typedData.types
    expect(verifyTypedData(typedData.domain, types, typedData.message, json.signature as string)).toBe(
      operator.address,
    )

    // a refusal of the whole request is signed too, with its status and code
    const refusalText = JSON.stringify({ id: 'r2', readings: [] })
    const refusal = await postSigned(refusalText)
    expect(refusal).toMatchObject({
      status: 400,
      json: { error: { code: 'BATCH_EMPTY' }, gateway: operator.address },
    })
    const refused = gatewayVerdictTypedData({
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      verdict: { request: keccak256(toBytes(refusalText)), status: 400, code: 'BATCH_EMPTY', readings: [] },
    })
    const { EIP712Domain: __, ...refusedTypes } = refused.types
    expect(
      verifyTypedData(refused.domain, refusedTypes, refused.message, refusal.json.signature as string),
    ).toBe(operator.address)
  })

  it('answers 503 INGEST_FAILED, unsigned, when it cannot check and store a batch, and reports it with a code', async () => {
    clockFailure = new Error('the clock source is gone')
    const { status, json } = await postSigned(
      JSON.stringify({ readings: [toReadingJson(await sign(stations[0] as PrivateKeyAccount, 1n))] }),
    )
    expect(status).toBe(503)
    expect(json).toMatchObject({ error: { code: 'INGEST_FAILED' } })
    expect(json.signature).toBeUndefined() // it drops nothing: no device needs to believe it
    expect(errors.map((e) => e.code)).toContain('INGEST_FAILED')
    expect(await storedCount()).toBe(0)
  })

  it('rejects each bad reading with its reason and keeps the good ones of the same batch', async () => {
    const [a, b, c] = stations as [PrivateKeyAccount, PrivateKeyAccount, PrivateKeyAccount]
    const stranger = privateKeyToAccount(generatePrivateKey())
    registry.set(c.address.toLowerCase(), { deviceClass: 1, status: 'retired' })
    const good = await sign(a, 5n)
    const forged = { ...(await sign(stranger, 1n)), device: b.address }
    const readings = [
      toReadingJson(good),
      toReadingJson(forged),
      toReadingJson(await sign(stranger, 1n)),
      toReadingJson(await sign(c, 1n)),
      toReadingJson(await sign(b, 1n, now, [1n, 2n])),
      toReadingJson(await sign(b, 2n, now + 3_600n)),
      toReadingJson(await sign(b, 3n, GENESIS + 9n * 30n)),
      { ...toReadingJson(await sign(b, 4n)), seq: '-4' },
      toReadingJson(await sign(a, 5n, now, [1n, 1n, 1n, 1n])),
      toReadingJson(good),
      toReadingJson(await sign(a, 4n)),
    ]
    const { status, json } = await post({ readings })
    expect(status).toBe(200)
    const reasons = (json.results as { status: string; reason?: string; duplicate?: boolean }[]).map(
      (r) => r.reason ?? (r.duplicate ? 'duplicate' : r.status),
    )
    expect(reasons).toEqual([
      'accepted',
      'SIGNATURE_INVALID',
      'DEVICE_UNKNOWN',
      'DEVICE_RETIRED',
      'SCHEMA_MISMATCH',
      'CLOCK_SKEW',
      'EPOCH_SEALED',
      'SCHEMA_INVALID',
      'READING_REPLAYED',
      'duplicate',
      'READING_REPLAYED',
    ])
    expect(json).toMatchObject({ accepted: 2, rejected: 9 })
    expect(await storedCount()).toBe(1)
  })

  it('accepts a reading signed by another EIP-712 implementation (ethers), from the documented typed data', async () => {
    const wallet = Wallet.createRandom()
    registry.set(wallet.address.toLowerCase(), { deviceClass: 1, status: 'active' })
    const message = { device: wallet.address, seq: 1n, time: now, values: [2150n, -5n, 123n, 10132n] }
    const signature = await wallet.signTypedData(
      {
        name: 'depin',
        version: '1',
        chainId: deployment.chainId,
        verifyingContract: deployment.contracts.deviceRegistry,
      },
      {
        Reading: [
          { name: 'device', type: 'address' },
          { name: 'seq', type: 'uint64' },
          { name: 'time', type: 'uint64' },
          { name: 'values', type: 'int64[]' },
        ],
      },
      message,
    )
    const reading = {
      device: wallet.address,
      seq: '1',
      time: now.toString(),
      values: ['2150', '-5', '123', '10132'],
      signature,
    }
    const { json } = await post({ readings: [reading] })
    expect(json).toMatchObject({ accepted: 1, rejected: 0 })
    expect(await storedCount()).toBe(1)
  })

  it('remembers the last sequence across a restart', async () => {
    const [a] = stations as [PrivateKeyAccount]
    expect((await post({ readings: [toReadingJson(await sign(a, 7n))] })).json.accepted).toBe(1)
    await gateway.stop()
    await startGateway()
    const replay = await post({ readings: [toReadingJson(await sign(a, 7n, now + 1n))] })
    expect(replay.json.results).toEqual([expect.objectContaining({ reason: 'READING_REPLAYED' })])
    expect((await post({ readings: [toReadingJson(await sign(a, 8n))] })).json.accepted).toBe(1)
    expect(await storedCount()).toBe(2)
  })

  it('answers malformed, mistyped and oversized requests with a 4xx and changes nothing', async () => {
    const good = toReadingJson(await sign(stations[0] as PrivateKeyAccount, 1n))
    const cases: [number, string, string | undefined, unknown][] = [
      [400, 'INVALID_BODY', '{"readings": [', undefined],
      [400, 'INVALID_BODY', undefined, { readings: 'all of them' }],
      [400, 'INVALID_BODY', undefined, [good]],
      [400, 'BATCH_EMPTY', undefined, { readings: [] }],
      [413, 'BATCH_TOO_LARGE', undefined, { readings: Array.from({ length: 10_000 }, () => ({})) }],
      [413, 'BODY_TOO_LARGE', undefined, { readings: [good], padding: 'x'.repeat(2 * 1024 * 1024) }],
    ]
    for (const [status, code, raw, body] of cases) {
      const response = await post(body, raw)
      expect(response.status, code).toBe(status)
      expect(response.json).toMatchObject({ error: { code, message: expect.any(String) } })
    }
    const wrongType = await fetch(`${gateway.url}/v1/readings`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    })
    expect(wrongType.status).toBe(415)
    expect(await wrongType.json()).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } })
    expect(await storedCount()).toBe(0)
  })
})

describe('sealing epochs', () => {
  it('keeps sealing on its timer after a failure, which it reports once with a code', async () => {
    clockFailure = new Error('the clock source is gone')
    await waitForCondition('the seal failure to be reported', () => errors.length > 0)
    expect(errors.map((e) => e.code)).toEqual(['EPOCH_SEAL_FAILED'])
    expect(errors[0]?.message).toMatch(/the clock source is gone/)
    // the timer goes on: once the clock works again, the closed epoch is sealed
    now = GENESIS + 11n * 30n + BigInt(blueprint.epochs.sealDelaySeconds)
    clockFailure = undefined
    await waitForCondition('epoch 10 to be sealed by the timer', async () => {
      const response = await fetch(`${gateway.url}/v1/batches/10`)
      await response.arrayBuffer()
      return response.status === 200
    })
    expect(errors).toHaveLength(1) // reported once while it lasted, not on every tick
  })

  it('seals a closed epoch into a canonical, content-addressed batch and refuses late readings', async () => {
    const keccak = await loadKeccak256()
    const readings = []
    for (const s of [...stations].reverse()) readings.push(await sign(s, 2n), await sign(s, 1n, now - 1n))
    expect((await post({ readings: readings.map(toReadingJson) })).json.accepted).toBe(3) // seq 1 after 2 is a replay

    expect(await gateway.sealClosedEpochs()).toEqual([]) // epoch 10 still open
    now = GENESIS + 11n * 30n + BigInt(blueprint.epochs.sealDelaySeconds)
    expect(await gateway.sealClosedEpochs()).toEqual([10n])

    const response = await fetch(`${gateway.url}/v1/batches/10`)
    expect(response.status).toBe(200)
    const hash = response.headers.get('x-batch-hash') as `0x${string}`
    const batch = decodeBatch(keccak, new Uint8Array(await response.arrayBuffer()), hash)
    expect(batch.epoch).toBe(10n)
    expect(batch.readings.map((r) => r.device)).toEqual(stations.map((s) => s.address.toLowerCase()).sort())
    const byHash = await fetch(`${gateway.url}/v1/batches/by-hash/${hash}`)
    expect(byHash.headers.get('x-batch-epoch')).toBe('10')

    const late = await post({
      readings: [toReadingJson(await sign(stations[0] as PrivateKeyAccount, 9n, now - 20n))],
    })
    expect(late.json.results).toEqual([expect.objectContaining({ reason: 'EPOCH_SEALED' })])
    expect((await fetch(`${gateway.url}/v1/batches/11`)).status).toBe(404)
    // HEAD, as validators look for late batches: the hash without the bytes; to a stranger, an
    // unsealed or far-future epoch is a 404 and a malformed one a 400, each without a body
    const head = await fetch(`${gateway.url}/v1/batches/10`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('x-batch-hash')).toBe(hash)
    expect((await head.arrayBuffer()).byteLength).toBe(0)
    for (const [epoch, status] of [
      ['11', 404],
      ['9999999999999999999', 404],
      ['-1', 400],
      ['1e3', 400],
      ['99999999999999999999', 400],
    ] as const) {
      const answer = await fetch(`${gateway.url}/v1/batches/${epoch}`, { method: 'HEAD' })
      expect(answer.status, `HEAD /v1/batches/${epoch}`).toBe(status)
      expect(answer.headers.get('x-batch-hash')).toBeNull()
      expect((await answer.arrayBuffer()).byteLength).toBe(0)
    }
    expect(() =>
      decodeBatch(keccak, batch.readings.length ? new Uint8Array([1, 2]) : new Uint8Array(), hash),
    ).toThrow(/hashes to/)
  })
})
