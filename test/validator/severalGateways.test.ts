/**
 * Two gateways on the registry's list, each with stations of its own: every validator fetches
 * both sealed batches (it finds the gateways on-chain, not in its config), and the settled report
 * covers their union. Three validator processes on real anvil, loopback.
 */
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { decodeBatch } from '../../src/gateway/batchFormat.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
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
})
