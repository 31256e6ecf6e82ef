/**
 * Two gateways on the registry's list, each with stations of its own: every validator fetches
 * both sealed batches (it finds the gateways on-chain, not in its config), and the settled report
 * covers their union. Three validator processes on real anvil, loopback. Every role serves its
 * Prometheus metrics at GET /metrics: scraped and parsed with a text-format parser of its own.
 * Every validator publishes each settled epoch's record, checked against the chain's roots.
 */
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { decodeBatch } from '../../src/gateway/batchFormat.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import type { SignedReading } from '../../src/readings/reading.ts'
import { decodeEpochRecord, type EpochRecord, verifyEpochRecord } from '../../src/rewards/epochRecord.ts'
import { useCaseOf } from '../../src/usecases/registry.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { scrapeMetrics } from '../helpers/scrapeMetrics.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 3, gateways: 2 })
}, 120_000)
afterAll(async () => net?.stop())

/** A gateway's sealed batch of `epoch`: its hash and reading count, or undefined while unsealed. */
async function sealedBatch(url: string, epoch: bigint) {
  const response = await fetch(`${url}/v1/batches/${epoch}`)
  if (!response.ok) return undefined
  const batch = decodeBatch(await loadKeccak256(), new Uint8Array(await response.arrayBuffer()))
  return { hash: batch.hash, count: batch.readings.length }
}

describe('several gateways', () => {
  it("judges the union of every listed gateway's batch", async () => {
    const found = await waitFor('an epoch with readings at both gateways to settle', async () => {
      for (const settled of net.indexer.store.epochs()) {
        const batches = await Promise.all(net.gateways.map((g) => sealedBatch(g.url, settled.epoch)))
        if (batches.every((b) => b && b.count > 0)) return { settled, batches }
      }
      return undefined
    })
    const [first, second] = found.batches as [
      { hash: `0x${string}`; count: number },
      { hash: `0x${string}`; count: number },
    ]
    const batches = [first, second]
    for (const p of net.processes) {
      const store = createValidatorStore(join(dirname(p.config), 'validator.db'))
      try {
        // the quorum may settle the epoch before the last validator has judged it
        const own = await waitFor(`validator ${p.address} to judge epoch ${found.settled.epoch}`, () =>
          store.result(found.settled.epoch),
        )
        expect(own.batchHashes).toEqual(batches.map((b) => b.hash).sort())
        // each gateway has stations of its own, so the union holds every reading of both
        expect(store.verdicts(found.settled.epoch)).toHaveLength(first.count + second.count)
        expect(own.report.readingsRoot).toBe(found.settled.readingsRoot)
      } finally {
        store.close()
      }
    }
  })

  it('serves Prometheus metrics on every role: judging, peers and epoch lag; ingest and refusals by reason', async () => {
    const settled = await waitFor('an epoch to settle', () => net.indexer.store.epochs(1)[0])
    for (const [i, p] of net.processes.entries()) {
      const url = `http://127.0.0.1:${net.ports[i]}`
      const store = createValidatorStore(join(dirname(p.config), 'validator.db'))
      await waitFor(`validator ${p.address} to judge epoch ${settled.epoch}`, () =>
        store.result(settled.epoch),
      )
      const acceptedThere = store.verdicts(settled.epoch).filter((v) => v.status === 'accepted').length
      store.close()
      // its own indexer sees the settlement within a poll or so
      const metrics = await waitFor(
        `validator ${p.address}'s indexer to see epoch ${settled.epoch} settled`,
        async () => {
          const scraped = await scrapeMetrics(url)
          return (scraped.value('depin_settled_epoch') ?? -1) >= Number(settled.epoch) ? scraped : undefined
        },
      )
      expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/)
      expect(metrics.families.get('depin_validator_judge_seconds')?.type).toBe('HISTOGRAM')
      expect(metrics.families.get('depin_validator_peers')?.metrics[0]?.labels?.role).toBe('validator')
      expect(metrics.count('depin_validator_judge_seconds')).toBeGreaterThanOrEqual(1)
      // every epoch it judged counts: at least the settled one's verdicts
      expect(
        metrics.value('depin_validator_readings_judged_total', { verdict: 'accepted' }),
      ).toBeGreaterThanOrEqual(acceptedThere)
      expect(metrics.value('depin_validator_peers')).toBe(2)
      expect(metrics.value('depin_validator_peers_reachable')).toBe(2)
      expect(metrics.value('depin_epoch_lag')).toBeGreaterThanOrEqual(0)
      // its peers' posts were answered and timed, by route pattern
      expect(
        metrics.count('depin_http_request_duration_seconds', { route: '/v1/reports', method: 'POST' }),
      ).toBeGreaterThan(0)
      expect(metrics.value('depin_process_cpu_seconds_total')).toBeGreaterThan(0)
    }

    const gateway = net.gateways[0] as (typeof net.gateways)[number]
    const before = await scrapeMetrics(gateway.url)
    expect(before.sum('depin_gateway_readings_accepted_total', { transport: 'http' })).toBeGreaterThan(0)
    const post = (body: string) =>
      fetch(`${gateway.url}/v1/readings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
    expect((await post('{"readings": []}')).status).toBe(400)
    expect((await post('{"readings": [')).status).toBe(400) // refused by fastify's parser, counted too
    expect((await post('{"readings": [{"device": "0x12"}]}')).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 1_100)) // one collection serves scrapes for 1 s
    const after = await scrapeMetrics(gateway.url)
    const refused = (m: typeof before) =>
      m.value('depin_gateway_batches_refused_total', { transport: 'http', code: 'BATCH_EMPTY' }) ?? 0
    expect(refused(after) - refused(before)).toBe(1)
    const unparsed = (m: typeof before) =>
      m.value('depin_gateway_batches_refused_total', { transport: 'http', code: 'INVALID_BODY' }) ?? 0
    expect(unparsed(after) - unparsed(before)).toBe(1)
    const rejected = (m: typeof before) =>
      m.sum('depin_gateway_readings_rejected_total', { transport: 'http' })
    expect(rejected(after) - rejected(before)).toBe(1)
    expect(
      after.families.get('depin_gateway_readings_rejected_total')?.metrics.map((m) => m.labels?.reason),
    ).toContain('SCHEMA_INVALID')
    expect(after.value('depin_gateway_sealed_epoch')).toBeGreaterThanOrEqual(Number(settled.epoch))
  })

  it("publishes each settled epoch's record: the same bytes at every validator, holding to the chain's three roots", async () => {
    const settled = await waitFor('an epoch with readings to settle', () =>
      net.indexer.store.epochs().find((e) => e.accepted > 0),
    )
    const { recordKinds } = useCaseOf(net.blueprint)
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(
      net.deployment.chainId,
      net.deployment.contracts.deviceRegistry,
      recordKinds,
    )
    const served = await Promise.all(
      net.ports.map((port) =>
        waitFor(`validator on ${port} to serve epoch ${settled.epoch}'s record`, async () => {
          const response = await fetch(`http://127.0.0.1:${port}/v1/epoch-records/${settled.epoch}`)
          if (response.status === 404) return undefined
          expect(response.status).toBe(200)
          return new Uint8Array(await response.arrayBuffer())
        }),
      ),
    )
    // canonical bytes: every validator that judged as the chain settled serves the same
    for (const bytes of served)
      expect(Buffer.from(bytes).equals(Buffer.from(served[0] as Uint8Array))).toBe(true)
    const record = decodeEpochRecord(served[0] as Uint8Array, recordKinds)
    expect(record.epoch).toBe(settled.epoch)
    expect(record.readings).toHaveLength(settled.accepted)
    expect(record.receipts.length).toBeGreaterThan(0)
    const roots = {
      readingsRoot: settled.readingsRoot,
      receiptsRoot: settled.receiptsRoot,
      rewardsRoot: settled.rewardsRoot,
    }
    expect(verifyEpochRecord(record, roots, { hash, keccak })).toEqual({ type: 'valid' })
    // a record altered anywhere fails the chain's roots (or its devices' signatures)
    const [first, ...rest] = record.readings as [SignedReading, ...SignedReading[]]
    const altered = (change: Partial<EpochRecord>) =>
      verifyEpochRecord({ ...record, ...change }, roots, { hash, keccak })
    expect(altered({ readings: rest })).toMatchObject({
      type: 'invalid',
      problem: expect.stringMatching(/readings make root/),
    })
    expect(
      altered({ readings: [{ ...first, values: first.values.map((v) => v + 1n) }, ...rest] }),
    ).toMatchObject({
      type: 'invalid',
      problem: expect.stringMatching(/not signed by its device/),
    })
    expect(altered({ receipts: record.receipts.slice(1) })).toMatchObject({
      problem: expect.stringMatching(/receipts make root/),
    })
    const [account, amount] = [...record.cumulative][0] as [string, bigint]
    expect(altered({ cumulative: new Map([...record.cumulative, [account, amount + 1n]]) })).toMatchObject({
      problem: expect.stringMatching(/amounts make root/),
    })
    // and bytes that are no record are refused as such
    expect(() => decodeEpochRecord(new TextEncoder().encode('{"version":2}'), recordKinds)).toThrow(
      RangeError,
    )
    // an epoch not settled has no record
    const unsettled = await fetch(`http://127.0.0.1:${net.ports[0]}/v1/epoch-records/999999`)
    expect(unsettled.status).toBe(404)
    expect(await unsettled.json()).toMatchObject({ error: { code: 'EPOCH_RECORD_NOT_FOUND' } })
  })
})
