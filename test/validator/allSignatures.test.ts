/**
 * In a healthy network every honest validator earns for every epoch: the leader, holding a quorum,
 * still waits (within its turn) for the validators that have not reported yet, so each settled
 * report carries every active validator's signature.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
/** Unix seconds when every validator was running: epochs starting later are judged by all. */
let allRunningAt: bigint
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 4 })
  allRunningAt = BigInt(Math.floor(Date.now() / 1000))
}, 120_000)
afterAll(async () => net?.stop())

describe('a healthy 4-validator network', () => {
  it('settles every report with all 4 signatures', async () => {
    const epochLength = BigInt(net.blueprint.epochs.lengthSeconds)
    const judgedByAll = () =>
      net.indexer.store
        .epochs()
        .filter((e) => net.deployment.genesisTime + e.epoch * epochLength >= allRunningAt && e.accepted > 0)
    const settled = await waitFor(
      'four epochs with readings to settle',
      () => (judgedByAll().length >= 4 ? judgedByAll() : undefined),
      180_000,
    )
    const everyone = [...net.addresses()].sort()
    for (const epoch of settled) {
      expect(epoch.signers.map((s) => s.toLowerCase()).sort(), `signers of epoch ${epoch.epoch}`).toEqual(
        everyone,
      )
    }
    expect(settled.length).toBeGreaterThanOrEqual(4)
  }, 240_000)
})
