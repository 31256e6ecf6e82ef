import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRewardsTree, hashRewardLeaf } from '../../src/rewards/rewardsTree.ts'
import { expectRevert } from '../helpers/expectRevert.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
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
revertAfterEachTest(() => net)

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

describe('the TypeScript rewards tree against the contract', () => {
  it('fixed vector: a one-leaf tree is the double-hashed leaf, and the contract pays it with an empty proof', async () => {
    const leaf = {
      account: '0x1111111111111111111111111111111111111111' as Address,
      cumulativeAmount: 10n ** 18n,
    }
    // keccak256(keccak256(abi.encode(0x1111…1111, 1e18))), as OpenZeppelin's StandardMerkleTree computes it
    const expected = StandardMerkleTree.of(
      [[leaf.account, leaf.cumulativeAmount]],
      ['address', 'uint256'],
    ).root
    const tree = await buildRewardsTree([leaf])
    expect(await hashRewardLeaf(leaf)).toBe(expected)
    expect(tree.root).toBe(expected)
    const report = makeReport(1n, tree.root, leaf.cumulativeAmount)
    await net.send(
      net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
    )
    await net.send(net.contracts.rewardDistributor.write.claim([leaf.account, leaf.cumulativeAmount, []]))
    expect(await balance(leaf.account)).toBe(leaf.cumulativeAmount)
  })

  it('accepts proofs of the fast tree for every account of a 50-leaf epoch', async () => {
    const leaves = Array.from({ length: 50 }, (_, i) => ({
      account: keccak256(toHex(`account ${i}`)).slice(0, 42) as Address,
      cumulativeAmount: BigInt(i + 1) * WAD,
    }))
    const tree = await buildRewardsTree(leaves)
    const total = leaves.reduce((sum, l) => sum + l.cumulativeAmount, 0n)
    const report = makeReport(1n, tree.root, total)
    const emission = await net.contracts.depinToken.read.emissionFor([1n])
    await net.send(
      net.contracts.depinToken.write.approve([net.deployment.contracts.rewardDistributor, total]),
    )
    await net.send(net.contracts.rewardDistributor.write.depositFees([total - emission]))
    await net.send(
      net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
    )
    for (const leaf of leaves) {
      const proof = tree.getProof(leaf.account)
      if (!proof) throw new Error(`no proof for ${leaf.account}`)
      await net.send(
        net.contracts.rewardDistributor.write.claim([leaf.account, leaf.cumulativeAmount, proof]),
      )
    }
    expect(await net.contracts.rewardDistributor.read.totalClaimed()).toBe(total)
  })
})
