/**
 * Leader failover and the price of being offline, with n = 4 validator processes (quorum 3) on
 * real anvil. The leader of an epoch is killed (SIGKILL) while that epoch runs: the validator
 * next in address order submits it within one leader timeout of its turn. Kept down for K
 * epochs, the killed validator earns nothing for them (the validator pool of an epoch goes to
 * the signers of the settlement it builds on) while the online validators keep earning. Back
 * online, it signs again and is paid for it.
 */
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getContracts } from '../../src/chain/getContracts.ts'
import { readValidatorConfig } from '../../src/cli/validatorRun.ts'
import type { EpochRecord } from '../../src/indexer/indexerStore.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import { type ProcessNetwork, startProcessNetwork, type ValidatorProcess } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'
import { withValidatorErrors } from '../helpers/validatorLog.ts'

/** Epochs the killed validator stays down for, counted in settlements that build on a base it could not sign. */
const OFFLINE_EPOCHS = 2
/** Seconds a settlement may take past its leader's turn: a block or two to mine it. */
const SLACK_SECONDS = 3n

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 4 })
}, 120_000)
afterAll(async () => net?.stop())

const now = () => BigInt(Math.floor(Date.now() / 1000))
const epochStart = (epoch: bigint) => net.deployment.genesisTime + epoch * net.deployment.epochLength
/** The settlement epoch `epoch` builds on, by the validators' rule: the last one settled before it. */
const baseOf = (epoch: bigint, settled: EpochRecord[]) => settled.find((e) => e.epoch < epoch)
const lower = (addresses: readonly string[]) => addresses.map((a) => a.toLowerCase())

/** Shared by the tests below, in order: the killed leader, the epoch it led, and its index. */
let victim: ValidatorProcess
let victimIndex: number
let ledEpoch: bigint
/** The store of a validator that stays online throughout: the one after the victim in process order. */
const honestStore = () =>
  createValidatorStore(
    join(
      dirname((net.processes[(victimIndex + 1) % net.processes.length] as ValidatorProcess).config),
      'validator.db',
    ),
  )

describe('leader failover', () => {
  it('a leader killed (SIGKILL) mid-epoch: the next leader submits within the timeout', async () => {
    await waitFor('an epoch with readings to settle', () =>
      net.indexer.store.epochs().find((e) => e.accepted > 0),
    )
    // the leader of epoch e at turn t is the active set, sorted by address, at index (e + t) mod n
    const active = lower(
      await getContracts(net.admin, net.deployment).validatorSet.read.activeValidators(),
    ).sort()
    ledEpoch = (now() - net.deployment.genesisTime) / net.deployment.epochLength + 1n
    const leader = active[Number(ledEpoch % BigInt(active.length))]
    const successor = active[Number((ledEpoch + 1n) % BigInt(active.length))]
    victimIndex = net.processes.findIndex((p) => p.address.toLowerCase() === leader)
    victim = net.processes[victimIndex] as ValidatorProcess

    // turns are counted from the seal plus the batch-agreement time, each one leader timeout long
    const config = readValidatorConfig(victim.config)
    const seconds = (ms: number) => BigInt(Math.ceil(ms / 1000))
    const firstTurn =
      epochStart(ledEpoch + 1n) +
      BigInt(net.blueprint.epochs.sealDelaySeconds) +
      seconds(config.agreementTimeoutMs)
    const leaderTimeout = seconds(config.leaderTimeoutMs)
    await waitFor(
      `epoch ${ledEpoch} to be half over`,
      () => (now() >= epochStart(ledEpoch) + net.deployment.epochLength / 2n ? true : undefined),
      30_000,
    )
    const exited = new Promise((resolve) => victim.child.once('exit', resolve))
    victim.child.kill('SIGKILL')
    await exited
    expect(now()).toBeLessThan(epochStart(ledEpoch + 1n)) // killed before the epoch ended

    const settled = await waitFor(
      `epoch ${ledEpoch} to settle`,
      () => net.indexer.store.getEpoch(ledEpoch),
      60_000,
    )
    expect(settled.submitter.toLowerCase()).toBe(successor)
    expect(lower(settled.signers)).not.toContain(leader)
    expect(settled.signers).toHaveLength(3)
    // the successor waited out the dead leader's turn, and submitted within its own
    expect(settled.timestamp).toBeGreaterThanOrEqual(firstTurn + leaderTimeout)
    expect(settled.timestamp).toBeLessThanOrEqual(firstTurn + 2n * leaderTimeout + SLACK_SECONDS)
  }, 150_000)

  it('a validator offline for K epochs earns nothing for them', async () => {
    // an epoch x pays the validator pool to the signers of its base b (the last settlement before
    // x ended); a base settled from the killed epoch on cannot carry the killed validator's signature
    const offlinePairs = () => {
      const settled = net.indexer.store.epochs()
      return settled
        .map((paid) => ({ paid, base: baseOf(paid.epoch, settled) }))
        .filter(
          (pair): pair is { paid: EpochRecord; base: EpochRecord } => (pair.base?.epoch ?? -1n) >= ledEpoch,
        )
    }
    const pairs = await waitFor(
      `${OFFLINE_EPOCHS} epochs to settle on bases signed while validator ${victimIndex} was down`,
      () => (offlinePairs().length >= OFFLINE_EPOCHS ? offlinePairs() : undefined),
      90_000,
    )
    const offline = victim.address.toLowerCase()
    const honest = honestStore()
    try {
      const amountOf = (epoch: bigint, account: string) => {
        const own = honest.result(epoch)
        if (!own) throw new Error(`the honest validator never judged epoch ${epoch}`)
        expect(own.report.rewardsRoot).toBe(net.indexer.store.getEpoch(epoch)?.rewardsRoot)
        return own.cumulative.get(account) ?? 0n
      }
      for (const { paid, base } of pairs) {
        expect(lower(base.signers)).not.toContain(offline)
        expect(amountOf(paid.epoch, offline)).toBe(amountOf(base.epoch, offline))
        for (const signer of lower(base.signers))
          expect(amountOf(paid.epoch, signer)).toBeGreaterThan(amountOf(base.epoch, signer))
      }
    } finally {
      honest.close()
    }
  }, 120_000)

  it('the validator back online signs again and earns again', async () => {
    await net.restart(victimIndex)
    const returning = net.processes[victimIndex] as ValidatorProcess
    const address = returning.address.toLowerCase()
    const back = (now() - net.deployment.genesisTime) / net.deployment.epochLength
    // a turn-0 leader counts its own signature: it signs at least the epochs it leads, one in four
    const signed = await waitFor(
      'an epoch signed by the returning validator to settle',
      () => net.indexer.store.epochs().find((e) => e.epoch >= back && lower(e.signers).includes(address)),
      90_000,
    ).catch((error: unknown) => {
      throw withValidatorErrors(error, [returning])
    })
    const paid = await waitFor(
      'the settlement that builds on it',
      () => {
        const settled = net.indexer.store.epochs()
        return settled.find((e) => e.epoch > signed.epoch && baseOf(e.epoch, settled)?.epoch === signed.epoch)
      },
      60_000,
    )
    const honest = honestStore()
    try {
      expect(honest.result(paid.epoch)?.report.rewardsRoot).toBe(paid.rewardsRoot)
      const before = honest.result(signed.epoch)?.cumulative.get(address) ?? 0n
      expect(honest.result(paid.epoch)?.cumulative.get(address) ?? 0n).toBeGreaterThan(before)
    } finally {
      honest.close()
    }
  }, 180_000)
})
