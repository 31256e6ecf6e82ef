import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import type { Address, Hex } from 'viem'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { expectRevert } from '../helpers/expectRevert.ts'
import {
  joinValidators,
  makeReport,
  signReport,
  startTestNetwork,
  type TestNetwork,
  WAD,
} from '../helpers/testNetwork.ts'

let net: TestNetwork
let validators: Awaited<ReturnType<typeof joinValidators>>
let snapshot: Hex
let alice: Address
let bob: Address
let carol: Address

beforeAll(async () => {
  net = await startTestNetwork()
  validators = await joinValidators(net, 3)
  ;[alice, bob, carol] = [
    (await net.actor()).address,
    (await net.actor()).address,
    (await net.actor()).address,
  ]
  await net.closeEpoch(2n)
})
afterAll(async () => net?.stop())
beforeEach(async () => {
  snapshot = await net.snapshot()
})
afterEach(async () => {
  await net.revert(snapshot)
})

/** Settles `epoch` with a tree of cumulative amounts; returns the OpenZeppelin tree (the reference). */
async function settle(epoch: bigint, cumulative: [Address, bigint][], total: bigint) {
  const tree = StandardMerkleTree.of(cumulative, ['address', 'uint256'])
  const report = makeReport(epoch, tree.root as Hex, total)
  await net.send(
    net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
  )
  return tree
}

function proofOf(tree: StandardMerkleTree<[Address, bigint]>, account: Address) {
  for (const [i, [a]] of tree.entries()) if (a === account) return tree.getProof(i) as Hex[]
  throw new Error(`no leaf for ${account}`)
}

const balance = (account: Address) => net.contracts.depinToken.read.balanceOf([account])

describe('RewardDistributor.claim', () => {
  it('refuses claims before any epoch settled', async () => {
    await expectRevert(net.contracts.rewardDistributor.write.claim([alice, 1n, []]), 'DistributorNoRoot')
  })

  it('pays rewards of several epochs with one proof, and nothing more on a second claim', async () => {
    await settle(
      1n,
      [
        [alice, 10n * WAD],
        [bob, 20n * WAD],
      ],
      30n * WAD,
    )
    const tree = await settle(
      2n,
      [
        [alice, 25n * WAD],
        [bob, 20n * WAD],
        [carol, 5n * WAD],
      ],
      20n * WAD,
    )

    await net.send(net.contracts.rewardDistributor.write.claim([alice, 25n * WAD, proofOf(tree, alice)]))
    expect(await balance(alice)).toBe(25n * WAD)
    expect(await net.contracts.rewardDistributor.read.claimed([alice])).toBe(25n * WAD)

    const args = await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 25n * WAD, proofOf(tree, alice)]),
      'DistributorNothingToClaim',
    )
    expect(args).toEqual([alice, 25n * WAD, 25n * WAD])
    expect(await balance(alice)).toBe(25n * WAD)
  })

  it('pays only the difference after an earlier claim', async () => {
    const first = await settle(
      1n,
      [
        [alice, 10n * WAD],
        [bob, 20n * WAD],
      ],
      30n * WAD,
    )
    await net.send(net.contracts.rewardDistributor.write.claim([alice, 10n * WAD, proofOf(first, alice)]))
    const second = await settle(
      2n,
      [
        [alice, 14n * WAD],
        [bob, 20n * WAD],
      ],
      4n * WAD,
    )
    await net.send(net.contracts.rewardDistributor.write.claim([alice, 14n * WAD, proofOf(second, alice)]))
    expect(await balance(alice)).toBe(14n * WAD)
    // a proof against an older root no longer works
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([bob, 20n * WAD, proofOf(first, bob)]),
      'DistributorInvalidProof',
    )
    expect(await net.contracts.rewardDistributor.read.totalClaimed()).toBe(14n * WAD)
  })

  it('sends the tokens to the account whoever submits the claim', async () => {
    const tree = await settle(
      1n,
      [
        [alice, 10n * WAD],
        [bob, 20n * WAD],
      ],
      30n * WAD,
    )
    const relayer = await net.actor()
    await net.send(
      relayer.contracts.rewardDistributor.write.claim([bob, 20n * WAD, proofOf(tree, bob)]),
      relayer.clients,
    )
    expect(await balance(bob)).toBe(20n * WAD)
    expect(await balance(relayer.address)).toBe(0n)
    const [event] = await net.contracts.rewardDistributor.getEvents.Claimed({ account: bob })
    expect(event?.args).toMatchObject({
      amount: 20n * WAD,
      cumulativeAmount: 20n * WAD,
      submitter: relayer.address,
    })
  })

  it('rejects forged proofs and inflated amounts', async () => {
    const tree = await settle(
      1n,
      [
        [alice, 10n * WAD],
        [bob, 20n * WAD],
        [carol, 1n * WAD],
      ],
      31n * WAD,
    )
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 11n * WAD, proofOf(tree, alice)]),
      'DistributorInvalidProof',
    )
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 20n * WAD, proofOf(tree, bob)]),
      'DistributorInvalidProof',
    )
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([carol, 1n * WAD, [`0x${'ab'.repeat(32)}`]]),
      'DistributorInvalidProof',
    )
    expect(await balance(alice)).toBe(0n)
    expect(await net.contracts.rewardDistributor.read.totalClaimed()).toBe(0n)
  })

  it('only the EpochManager settles epochs', async () => {
    await expectRevert(
      net.contracts.rewardDistributor.write.settle([1n, `0x${'11'.repeat(32)}`, 1n]),
      'DistributorUnauthorized',
    )
  })
})
