/**
 * A gateway the validators cannot reach across an epoch's seal, for longer than they wait for it
 * (gatewayWaitMs), seals a batch of readings it acknowledged: the epoch settles without them. Once
 * the gateway answers again, its batch is a late one: counted in a later epoch (announced by more
 * than f validators that judged the epoch it belongs to), every reading in it judged exactly once,
 * in one epoch, whatever the epochs after do. The late batch also holds copies of readings the
 * other gateway delivered in time (a device that sent to both): those counted already and are
 * dropped. Once the batch is served again, the proxy lies to one validator about it: its hash
 * is that of the gateway's first batch, of another epoch, which that validator holds. It must
 * log the lie and go on (the others announce the batch; it fetches it from them). Four validator
 * processes on real anvil, two real gateways, the second behind a proxy that plays the outage
 * (devices reach the gateways themselves), loopback only.
 */
import { createServer, type Server } from 'node:http'
import { dirname, join } from 'node:path'
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { compareReadings, decodeBatch, encodeBatch } from '../../src/gateway/batchFormat.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork | undefined
let proxy: Server | undefined
type Key = { device: string; seq: bigint }
/**
 * The epoch whose batch of the second gateway is out of the validators' reach, once chosen: the
 * batch served for it (its own readings and copies of three of the first gateway's), its hash,
 * and both parts.
 */
let hidden: { epoch: bigint; hash: Hex; bytes: Uint8Array; own: Key[]; copies: Key[] } | undefined
/** Requests for the hidden batch refused while it was hidden. */
let refused = 0
/** Lies told about the hidden batch's hash once it was served again. */
let lies = 0
/** The gateways' own URLs, in the order they are listed. */
const upstreams: string[] = []
/** The second gateway's first sealed batch the validators fetched: the lie told about the hidden one. */
let firstSeen: { epoch: bigint; hash: Hex } | undefined
/** The validator lied to. */
const liedTo = () => net?.processes[0]?.address.toLowerCase()

/** Whether the proxy keeps the hidden batch from the validators: until its epoch settled without it. */
const hiding = () => hidden !== undefined && net?.indexer.store.getEpoch(hidden.epoch) === undefined

async function outageProxy(upstream: string): Promise<string> {
  upstreams.push(upstream)
  if (upstreams.length === 1) return upstream // the first gateway is reached directly
  const keccak = await loadKeccak256()
  const keyOf = (r: Key): Key => ({ device: r.device.toLowerCase(), seq: r.seq })
  const server = createServer(async (request, response) => {
    const path = request.url ?? ''
    const epochMatch = /^\/v1\/batches\/(\d+)$/.exec(path)
    let forward: Response
    let bytes: Uint8Array
    try {
      forward = await fetch(`${upstream}${path}`, { method: request.method ?? 'GET' })
      bytes = new Uint8Array(await forward.arrayBuffer())
    } catch {
      response.writeHead(502, { 'content-type': 'application/json' }).end('{}')
      return
    }
    if (!firstSeen && epochMatch && request.method === 'GET' && forward.ok) {
      const batch = decodeBatch(keccak, bytes)
      firstSeen = { epoch: batch.epoch, hash: batch.hash }
    }
    // the first epoch past the late-batch window from the first batch whose sealed batches both
    // hold readings: it goes dark (so that the first batch counts in no epoch the lie is checked against)
    if (
      !hidden &&
      epochMatch &&
      request.method === 'GET' &&
      forward.ok &&
      firstSeen &&
      BigInt(epochMatch[1] as string) >= firstSeen.epoch + 8n
    ) {
      const batch = decodeBatch(keccak, bytes)
      const other = await fetch(`${upstreams[0]}/v1/batches/${batch.epoch}`)
      const first = other.ok ? decodeBatch(keccak, new Uint8Array(await other.arrayBuffer())) : undefined
      if (batch.readings.length >= 4 && first && first.readings.length >= 3) {
        const copies = first.readings.slice(0, 3)
        const late = encodeBatch(keccak, batch.epoch, [...batch.readings, ...copies].sort(compareReadings))
        hidden = {
          epoch: batch.epoch,
          hash: late.hash,
          bytes: late.bytes,
          own: batch.readings.map(keyOf),
          copies: copies.map(keyOf),
        }
      }
    }
    const forHidden =
      hidden !== undefined &&
      ((epochMatch && BigInt(epochMatch[1] as string) === hidden.epoch) ||
        path === `/v1/batches/by-hash/${hidden.hash}`)
    if (forHidden && hiding()) {
      refused++
      response.writeHead(503, { 'content-type': 'application/json' }).end('{}')
      return
    }
    const asker = String(request.headers['x-depin-validator'] ?? '').toLowerCase()
    if (forHidden && hidden && request.method === 'HEAD' && asker === liedTo() && firstSeen) {
      lies++
      response
        .writeHead(200, { 'content-type': 'application/x-ndjson', 'x-batch-hash': firstSeen.hash })
        .end()
      return
    }
    if (forHidden && hidden) {
      response.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-batch-hash': hidden.hash })
      response.end(request.method === 'HEAD' ? undefined : Buffer.from(hidden.bytes))
      return
    }
    const headers: Record<string, string> = {}
    forward.headers.forEach((value, key) => {
      if (key === 'content-type' || key.startsWith('x-batch')) headers[key] = value
    })
    response.writeHead(forward.status, headers)
    response.end(request.method === 'HEAD' ? undefined : Buffer.from(bytes))
  })
  proxy = server
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

beforeAll(async () => {
  net = await startProcessNetwork({ validators: 4, gateways: 2, wrapGateway: outageProxy })
}, 120_000)
afterAll(async () => {
  await net?.stop()
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)))
})

describe('a batch sealed late', () => {
  it('counts in a later epoch, each of its readings judged exactly once, copies of counted ones dropped, a lie about its hash logged', async () => {
    const network = net as ProcessNetwork
    const dark = await waitFor('a batch with readings to go dark', () => hidden, 150_000)
    const skipped = await waitFor(
      `epoch ${dark.epoch} to settle without the batch`,
      () => network.indexer.store.getEpoch(dark.epoch),
      60_000,
    )
    expect(refused).toBeGreaterThan(0)
    const stores = network.processes.map((p) => createValidatorStore(join(dirname(p.config), 'validator.db')))
    try {
      const [first] = stores as [ReturnType<typeof createValidatorStore>]
      // a later settled epoch counts it
      const counted = await waitFor(
        'a later epoch to settle with the late batch',
        () =>
          network.indexer.store
            .epochs()
            .find((e) => e.epoch > dark.epoch && first.result(e.epoch)?.batchHashes.includes(dark.hash)),
        90_000,
      )
      expect(counted.epoch - dark.epoch).toBeLessThanOrEqual(3n)
      // and the settled epoch after it, so that "judged once" covers what came next too
      const after = await waitFor(
        `epoch ${counted.epoch + 1n} to settle`,
        () => network.indexer.store.getEpoch(counted.epoch + 1n),
        60_000,
      )

      /** Per epoch, the validators whose judgement of it lost to the settled one. */
      const lost = new Map<bigint, number>()
      for (const store of stores) {
        const own = await waitFor('every validator to judge both epochs', () =>
          store.result(counted.epoch + 1n) ? store.result(counted.epoch) : undefined,
        )
        // every validator judged the same input the same way
        expect(own.batchHashes).toContain(dark.hash)
        expect(own.report.readingsRoot).toBe(counted.readingsRoot)
        expect(store.result(dark.epoch)?.report.readingsRoot).toBe(skipped.readingsRoot)
        expect(store.result(dark.epoch)?.batchHashes).not.toContain(dark.hash)
        expect(store.result(after.epoch)?.batchHashes).not.toContain(dark.hash)
        // each reading judged in exactly one settled epoch: the late batch's own in the epoch that
        // counted it, the copies in their own epoch (through the first gateway), not again. A
        // validator whose judgement of an epoch lost (its agreement on the input timed out apart
        // from the others', on a loaded machine) keeps verdicts the chain never settled: only the
        // judgements the chain settled are held to it, and at most f = 1 of 4 may lose an epoch
        for (let e = dark.epoch; e <= after.epoch; e++) {
          const settledThen = network.indexer.store.getEpoch(e)
          if (settledThen && store.result(e)?.report.readingsRoot !== settledThen.readingsRoot) {
            lost.set(e, (lost.get(e) ?? 0) + 1)
            continue
          }
          const judged = new Set(store.verdicts(e).map((v) => `${v.device}:${v.seq}`))
          const count = (keys: Key[]) => keys.filter((r) => judged.has(`${r.device}:${r.seq}`)).length
          expect(count(dark.own), `late readings judged in epoch ${e}`).toBe(
            e === counted.epoch ? dark.own.length : 0,
          )
          expect(count(dark.copies), `copies judged in epoch ${e}`).toBe(
            e === dark.epoch ? dark.copies.length : 0,
          )
        }
        const accepted = store
          .verdicts(counted.epoch)
          .filter(
            (v) => v.status === 'accepted' && dark.own.some((r) => r.device === v.device && r.seq === v.seq),
          )
        // honest stations' readings: accepted (the window reaches back to their epoch)
        expect(accepted).toHaveLength(dark.own.length)
      }
      for (const [epoch, validators] of lost)
        expect(validators, `validators that lost epoch ${epoch}`).toBeLessThanOrEqual(1)
      const logged = network.processes.flatMap((p) =>
        p.output
          .join('')
          .split('\n')
          .filter((line) => line.includes('"late_batches"'))
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      )
      // the validator lied to said so, and judged alike all the same (above)
      expect(lies).toBeGreaterThan(0)
      const told = (network.processes[0]?.output.join('') ?? '')
        .split('\n')
        .filter((line) => line.includes('"gateway_invalid"'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      expect(told).toContainEqual(
        expect.objectContaining({ epoch: dark.epoch.toString(), reason: expect.stringMatching(/not .*'s/) }),
      )
      expect(logged).toContainEqual(
        expect.objectContaining({
          epoch: counted.epoch.toString(),
          batches: 1,
          readings: dark.own.length + dark.copies.length,
          dropped: dark.copies.length,
        }),
      )
    } finally {
      for (const store of stores) store.close()
    }
  }, 300_000)
})
