/**
 * The validator set changes between epochs without stalling: a fourth validator process joins
 * while three run (started, then bonded on-chain) and is signing within a few epochs, with no
 * epoch skipped; then one of the original three leaves (ValidatorSet.leave, its process still
 * running) and the remaining three keep settling every epoch without it. Real processes, real
 * anvil, loopback.
 */
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readOperatorKey } from '../../src/chain/connectChain.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { getContracts } from '../../src/chain/getContracts.ts'
import { sendTransaction } from '../../src/chain/sendTransaction.ts'
import type { EpochRecord } from '../../src/indexer/indexerStore.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 3 })
}, 120_000)
afterAll(async () => net?.stop())

/** Settled epochs from `first` on, ascending. */
const settledFrom = (first: bigint): EpochRecord[] =>
  net.indexer.store
    .epochs()
    .filter((e) => e.epoch >= first)
    .sort((a, b) => (a.epoch < b.epoch ? -1 : 1))
const currentEpoch = () =>
  (BigInt(Math.floor(Date.now() / 1000)) - net.deployment.genesisTime) / net.deployment.epochLength
const expectConsecutive = (epochs: EpochRecord[]) =>
  expect(epochs.map((e) => e.epoch)).toEqual(
    epochs.map((_, i) => (epochs[0] as EpochRecord).epoch + BigInt(i)),
  )

describe('validator set changes between epochs', () => {
  it('a validator joins while the network runs: it signs within a few epochs and no epoch is skipped', async () => {
    await waitFor('a first epoch to settle', () => net.indexer.store.epochs()[0])
    const joinedIn = currentEpoch()
    // its node runs before its key is bonded: it advertises its endpoint once active
    const i = await net.addValidator({ bondAfterStart: true })
    const newcomer = (net.processes[i] as (typeof net.processes)[number]).address.toLowerCase()
    const signedByNewcomer = await waitFor(
      'an epoch signed by the newcomer',
      () => settledFrom(joinedIn).find((e) => e.signers.some((s) => s.toLowerCase() === newcomer)),
      90_000,
    )
    expect(signedByNewcomer.epoch - joinedIn).toBeLessThanOrEqual(5n)
    // it never judged the epoch its first one builds on: it took those amounts from a peer
    const newcomerOutput = () => (net.processes[i] as (typeof net.processes)[number]).output.join('')
    expect(newcomerOutput()).toContain('"base_adopted"')
    expect(newcomerOutput()).toContain('"advertised":"not active"')
    // it asks every 10 s whether it is active yet, so it may sign before it advertises
    await waitFor(
      'the newcomer to advertise its endpoint',
      () => (newcomerOutput().includes('"advertised":"set"') ? true : undefined),
      30_000,
    )
    expectConsecutive(settledFrom(joinedIn - 1n).filter((e) => e.epoch <= signedByNewcomer.epoch))
  })

  it('a validator leaves: the others keep settling every epoch without it', async () => {
    const leaver = net.processes[2] as (typeof net.processes)[number]
    const key = readOperatorKey(join(dirname(leaver.config), 'key'))
    const clients = await createChainClients({
      rpcUrl: net.anvil.rpcUrl,
      ...(key ? { privateKey: key } : {}),
    })
    await sendTransaction(
      clients.publicClient,
      getContracts(clients, net.deployment).validatorSet.write.leave(),
    )
    const leftIn = currentEpoch()
    const later = await waitFor(
      'three epochs to settle after the leave',
      () => {
        const after = settledFrom(leftIn + 1n)
        return after.length >= 3 ? after : undefined
      },
      90_000,
    )
    expectConsecutive(settledFrom(leftIn - 1n).filter((e) => e.epoch <= (later.at(-1) as EpochRecord).epoch))
    for (const epoch of later) {
      expect(epoch.signers.map((s) => s.toLowerCase())).not.toContain(leaver.address.toLowerCase())
      expect(epoch.signers.length).toBeGreaterThanOrEqual(2) // quorum of the three left
    }
  })
})
