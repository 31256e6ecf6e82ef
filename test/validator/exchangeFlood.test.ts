/**
 * An outsider floods every validator's public endpoint while epochs run: signed reports and batch
 * sets of 1,000 throwaway keys, for far-future epochs and for the current ones, and reports that
 * claim to be the validators' own with forged signatures. Every epoch still settles with the
 * honest root, nothing of the flood is kept, and every answer is a typed refusal (no 5xx).
 */
import { Agent, request } from 'node:http'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashEpochReport, signEpochReport } from '../../src/chain/signEpochReport.ts'
import { signBatchSet, toBatchSetJson } from '../../src/validator/batchSets.ts'
import { toSignedEpochReportJson } from '../../src/validator/createHttpReportExchange.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 40)
const THROWAWAY_KEYS = 1_000

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 3 })
}, 120_000)
afterAll(async () => net?.stop())

describe('a flood against every validator endpoint', () => {
  it('changes nothing: every epoch settles with the honest root, nothing of the flood is kept', async () => {
    const { deployment, blueprint } = net
    const { chainId } = deployment
    const { epochManager } = deployment.contracts
    await waitFor('a first settled epoch', () => net.indexer.store.epochs().find((e) => e.accepted > 0))
    const epochLength = BigInt(blueprint.epochs.lengthSeconds)
    const currentEpoch = () => (BigInt(Math.floor(Date.now() / 1000)) - deployment.genesisTime) / epochLength

    // the attacker's items, signed before the flood starts
    const base = currentEpoch()
    const bodies: { path: string; body: string }[] = []
    for (let k = 0; k < THROWAWAY_KEYS; k++) {
      const account = privateKeyToAccount(generatePrivateKey())
      // far-future epochs (they used to push every real epoch off the board), and the next ones
      const epoch = k % 2 === 0 ? base + 1_000_000n + BigInt(k) : base + BigInt(k % 4)
      const report = {
        epoch,
        rulesHash: `0x${'33'.repeat(32)}` as Hex,
        readingsRoot: `0x${'11'.repeat(32)}` as Hex,
        rewardsRoot: `0x${'22'.repeat(32)}` as Hex,
        receiptsRoot: `0x${'44'.repeat(32)}` as Hex,
        total: 1n,
        accepted: 1,
      }
      const { signature } = await signEpochReport({ account, chainId, epochManager, report })
      const signed = {
        epoch,
        report,
        digest: hashEpochReport(chainId, epochManager, report),
        signer: account.address,
        signature,
      }
      bodies.push({ path: '/v1/reports', body: JSON.stringify(toSignedEpochReportJson(signed)) })
      if (k % 10 === 0) {
        // forged: claims an honest validator's address
        const claimed = net.processes[k % net.processes.length]?.address as Hex
        bodies.push({
          path: '/v1/reports',
          body: JSON.stringify({ ...toSignedEpochReportJson(signed), signer: claimed }),
        })
        const set = await signBatchSet({
          account,
          chainId,
          epochManager,
          epoch,
          batches: [`0x${'33'.repeat(32)}`],
        })
        bodies.push({ path: '/v1/batch-sets', body: JSON.stringify(toBatchSetJson(set)) })
      }
    }

    const statuses = new Map<number, number>()
    const codes = new Map<string, number>()
    const floodStart = BigInt(Math.floor(Date.now() / 1000))
    const deadline = Date.now() + FLOOD_SECONDS * 1000
    let sent = 0
    // the attacker posts from an address of its own (127.0.0.2): the validators' rate limit is per
    // source, so it throttles the attacker and not the honest peers on 127.0.0.1
    const agent = new Agent({ keepAlive: true, maxSockets: 8, localAddress: '127.0.0.2' })
    const postFromAttacker = (port: number, path: string, body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            let text = ''
            res.on('data', (chunk: Buffer) => {
              text += chunk.toString()
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
          },
        )
        req.on('error', reject)
        req.end(body)
      })
    const worker = async (w: number) => {
      for (let i = w; Date.now() < deadline; i += 8) {
        const item = bodies[i % bodies.length] as { path: string; body: string }
        const port = net.ports[i % net.ports.length] as number
        const response = await postFromAttacker(port, item.path, item.body)
        const answer = JSON.parse(response.text) as { error?: { code?: string } }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
        const code = answer.error?.code ?? 'none'
        codes.set(code, (codes.get(code) ?? 0) + 1)
        sent++
      }
    }
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)))
    agent.destroy()
    const floodEnd = BigInt(Math.floor(Date.now() / 1000))
    console.log(
      `flood: ${sent} posts in ${FLOOD_SECONDS} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}; codes ${JSON.stringify(Object.fromEntries(codes))}`,
    )
    // every answer a typed refusal: none kept, none a server error
    expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true)
    expect(codes.get('none') ?? 0).toBe(0)
    expect(sent).toBeGreaterThan(THROWAWAY_KEYS)
    // the honest validators' own items were kept by their peers throughout (no refusal of them)
    for (const p of net.processes) expect(p.output.join('')).not.toContain('"own_item_refused"')

    // every epoch that ended during the flood, and the next one, settles with the honest root
    const firstEpoch = (floodStart - deployment.genesisTime) / epochLength
    const lastEpoch = (floodEnd - deployment.genesisTime) / epochLength
    await waitFor(
      `epochs ${firstEpoch}..${lastEpoch} to settle`,
      () => (net.indexer.store.getEpoch(lastEpoch) ? true : undefined),
      120_000,
    )
    const honest = net.processes.map((p) => p.address.toLowerCase())
    for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
      const settled = net.indexer.store.getEpoch(epoch)
      expect(settled, `epoch ${epoch} settled`).toBeDefined()
      for (const signer of settled?.signers ?? []) expect(honest).toContain(signer.toLowerCase())
      // nothing of the flood on any board
      for (const port of net.ports) {
        const { reports } = (await (await fetch(`http://127.0.0.1:${port}/v1/reports/${epoch}`)).json()) as {
          reports: { signer: string; digest: string }[]
        }
        for (const r of reports) expect(honest).toContain(r.signer.toLowerCase())
        const digests = new Set(reports.map((r) => r.digest))
        expect(digests.size, `distinct reports held for epoch ${epoch}`).toBe(1)
        expect(reports[0]?.digest).toBe(
          hashEpochReport(chainId, epochManager, {
            epoch,
            rulesHash: net.blueprint.rulesHash,
            readingsRoot: settled?.readingsRoot as Hex,
            rewardsRoot: settled?.rewardsRoot as Hex,
            receiptsRoot: settled?.receiptsRoot as Hex,
            total: settled?.total as bigint,
            accepted: settled?.accepted as number,
          }),
        )
      }
    }
  }, 600_000)
})
