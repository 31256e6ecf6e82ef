/**
 * n = 4 validator processes (quorum 3), one of them Byzantine: it signs, for every epoch, the
 * honest report and one with a rewards root of its own making. Epochs settle with the honest
 * root only; its equivocation is proven by the honest validators and its bond slashed. Then two
 * of the remaining three are killed: nothing settles without a quorum, and epochs settle again
 * once one of them returns.
 */
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getContracts } from '../../src/chain/getContracts.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 4, faults: { 3: 'equivocate' } })
}, 120_000)
afterAll(async () => net?.stop())

const now = () => BigInt(Math.floor(Date.now() / 1000))

describe('a Byzantine validator among four, then two validators offline', () => {
  it('settles only honest roots and slashes the equivocating validator', async () => {
    const liar = (net.processes[3] as (typeof net.processes)[number]).address.toLowerCase()
    const proof = await waitFor('the equivocation to be proven', () =>
      net.indexer.store.equivocations().find((e) => e.validator.toLowerCase() === liar),
    )
    expect(proof.slashed).toBe(net.blueprint.validators.minBond)
    expect(
      await getContracts(net.admin, net.deployment).validatorSet.read.isActive([liar as `0x${string}`]),
    ).toBe(false)

    await waitFor('an epoch with readings to settle', () =>
      net.indexer.store.epochs().find((e) => e.accepted > 0),
    )
    // every settled root is the one an honest validator computed (the liar's is keccak(honest root))
    const honest = createValidatorStore(join(dirname(net.processes[0]?.config as string), 'validator.db'))
    try {
      const settled = net.indexer.store.epochs()
      expect(settled.length).toBeGreaterThan(0)
      for (const epoch of settled) {
        const own = honest.result(epoch.epoch)
        if (!own) throw new Error(`honest validator never judged epoch ${epoch.epoch}`)
        expect(epoch.rewardsRoot).toBe(own.report.rewardsRoot)
        expect(epoch.readingsRoot).toBe(own.report.readingsRoot)
      }
    } finally {
      honest.close()
    }
  })

  it('does not settle with two of three offline, and settles again when one returns', async () => {
    const [, second, third] = net.processes
    second?.child.kill('SIGKILL')
    third?.child.kill('SIGKILL')
    const killedAt = now()
    const epochLength = BigInt(net.blueprint.epochs.lengthSeconds)
    const settledBefore = net.indexer.store.epochs().length
    // wait two whole epochs (plus sealing): no new report can reach the quorum of 2 with one validator
    await waitFor(
      'two epochs to pass',
      () => (now() > killedAt + 2n * epochLength + 4n ? true : undefined),
      60_000,
    )
    // no epoch that ended after the kill settles: its report can have one signature only. (One
    // that ended before may still settle: its report had the quorum before the kill, and the
    // survivor submits it, in its turn or in the last one before the deadline.)
    const endOf = (epoch: bigint) => net.deployment.genesisTime + (epoch + 1n) * net.deployment.epochLength
    const during = net.indexer.store.epochs().filter((e) => endOf(e.epoch) > killedAt)
    expect(during).toEqual([])
    expect(net.indexer.store.epochs().length).toBeLessThanOrEqual(settledBefore + 1)

    await net.restart(1)
    const back = now()
    const resumed = await waitFor(
      'an epoch to settle after one validator returned',
      () => net.indexer.store.epochs().find((e) => e.timestamp > back && e.accepted > 0),
      90_000,
    )
    expect(resumed.signers).toHaveLength(2)
  })
})
