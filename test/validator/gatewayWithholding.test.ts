/**
 * A gateway that withholds part of an epoch's batch from one validator (it serves that validator
 * a smaller batch, and refuses it the full one by hash) cannot make honest validators disagree:
 * the validators exchange the batches they hold before signing, the full batch counts (announced
 * by more than f of them), the victim fetches it from a peer validator by content address, and
 * the settled report covers every reading. Four validator processes on real anvil, loopback.
 */
import { createServer, type Server } from 'node:http'
import { dirname, join } from 'node:path'
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { decodeBatch, encodeBatch } from '../../src/gateway/batchFormat.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
let proxy: Server
/** The validator the gateway cheats, once known (until then it serves everyone honestly). */
let victim: string | undefined
/** Per epoch: the full batch's hash and size, and the partial one served to the victim. */
const withheld = new Map<bigint, { full: Hex; fullCount: number; partial: Hex }>()

/** A gateway in front of the real one that serves `victim` half of each epoch's batch. */
async function withholdingGateway(upstream: string): Promise<string> {
  const keccak = await loadKeccak256()
  proxy = createServer(async (request, response) => {
    const asker = String(request.headers['x-depin-validator'] ?? '').toLowerCase()
    let forward: Response
    let bytes: Uint8Array
    try {
      forward = await fetch(`${upstream}${request.url}`)
      bytes = new Uint8Array(await forward.arrayBuffer())
    } catch {
      // the real gateway is down (the network stopping): answer as a gateway that is away would
      response.writeHead(502, { 'content-type': 'application/json' }).end('{}')
      return
    }
    const epochMatch = /^\/v1\/batches\/(\d+)$/.exec(request.url ?? '')
    if (victim && asker === victim && forward.ok && epochMatch) {
      const full = decodeBatch(keccak, bytes)
      if (full.readings.length >= 2) {
        const partial = encodeBatch(keccak, full.epoch, full.readings.slice(0, full.readings.length >> 1))
        withheld.set(full.epoch, { full: full.hash, fullCount: full.readings.length, partial: partial.hash })
        response.writeHead(200, { 'content-type': 'application/x-ndjson', 'x-batch-hash': partial.hash })
        response.end(Buffer.from(partial.bytes))
        return
      }
    }
    if (victim && asker === victim && request.url?.startsWith('/v1/batches/by-hash/')) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{}')
      return
    }
    const headers: Record<string, string> = {}
    forward.headers.forEach((value, key) => {
      if (key === 'content-type' || key.startsWith('x-batch')) headers[key] = value
    })
    response.writeHead(forward.status, headers)
    response.end(Buffer.from(bytes))
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
}

beforeAll(async () => {
  net = await startProcessNetwork({ validators: 4, wrapGateway: withholdingGateway })
  victim = net.processes[0]?.address.toLowerCase()
}, 120_000)
afterAll(async () => {
  await net?.stop()
  await new Promise((resolve) => proxy?.close(resolve))
})

describe('a gateway withholding part of a batch from one validator', () => {
  it('cannot make the validators disagree: the victim fetches the full batch from a peer, and the root covers every reading', async () => {
    const settled = await waitFor(
      'an epoch the gateway cheated on to settle',
      () => net.indexer.store.epochs().find((e) => withheld.has(e.epoch)),
      90_000,
    )
    const cheat = withheld.get(settled.epoch) as { full: Hex; fullCount: number; partial: Hex }
    expect(cheat.partial).not.toBe(cheat.full)

    const victimProcess = net.processes[0] as (typeof net.processes)[number]
    const recovered = victimProcess.output
      .join('')
      .split('\n')
      .filter((line) => line.includes('"batch_recovered"'))
      .map((line) => JSON.parse(line) as { epoch: string; batch: string; from: string })
    expect(recovered).toContainEqual(
      expect.objectContaining({ epoch: settled.epoch.toString(), batch: cheat.full, from: 'peer' }),
    )

    for (const p of net.processes) {
      const store = createValidatorStore(join(dirname(p.config), 'validator.db'))
      try {
        // the quorum may settle the epoch before the last validator has judged it
        const own = await waitFor(`validator ${p.address} to judge epoch ${settled.epoch}`, () =>
          store.result(settled.epoch),
        )
        // the partial batch was announced by the victim alone (≤ f): only the full one counts
        expect(own.batchHashes).toEqual([cheat.full])
        expect(own.report.readingsRoot).toBe(settled.readingsRoot)
        expect(own.report.rewardsRoot).toBe(settled.rewardsRoot)
        expect(store.verdicts(settled.epoch)).toHaveLength(cheat.fullCount)
      } finally {
        store.close()
      }
    }
  })
})
