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

/**
 * Settles `epoch` with a tree of cumulative amounts (closing it first, if it is not: a report is due
 * before the epoch after next ends); returns the OpenZeppelin tree (the reference).
 */
async function settle(epoch: bigint, cumulative: [Address, bigint][], total: bigint) {
  const tree = StandardMerkleTree.of(cumulative, ['address', 'uint256'])
  const report = makeReport(epoch, tree.root as Hex, total)
  await net.closeEpoch(epoch)
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
    for (const epoch of [0n, 1n]) {
      const args = await expectRevert(
        net.contracts.rewardDistributor.write.claim([alice, 1n, epoch, []]),
        'DistributorNoRoot',
      )
      expect(args).toEqual([epoch])
    }
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

    await net.send(net.contracts.rewardDistributor.write.claim([alice, 25n * WAD, 2n, proofOf(tree, alice)]))
    expect(await balance(alice)).toBe(25n * WAD)
    expect(await net.contracts.rewardDistributor.read.claimed([alice])).toBe(25n * WAD)

    const args = await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 25n * WAD, 2n, proofOf(tree, alice)]),
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
    await net.send(net.contracts.rewardDistributor.write.claim([alice, 10n * WAD, 1n, proofOf(first, alice)]))
    const second = await settle(
      2n,
      [
        [alice, 14n * WAD],
        [bob, 20n * WAD],
      ],
      4n * WAD,
    )
    await net.send(
      net.contracts.rewardDistributor.write.claim([alice, 14n * WAD, 2n, proofOf(second, alice)]),
    )
    expect(await balance(alice)).toBe(14n * WAD)
    expect(await net.contracts.rewardDistributor.read.claimed([alice])).toBe(14n * WAD)
    const claims = await net.contracts.rewardDistributor.getEvents.Claimed(
      {},
      { fromBlock: net.deployment.startBlock },
    )
    expect(claims.map((c) => c.args.amount)).toEqual([10n * WAD, 4n * WAD])
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
      relayer.contracts.rewardDistributor.write.claim([bob, 20n * WAD, 1n, proofOf(tree, bob)]),
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
      net.contracts.rewardDistributor.write.claim([alice, 11n * WAD, 1n, proofOf(tree, alice)]),
      'DistributorInvalidProof',
    )
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 20n * WAD, 1n, proofOf(tree, bob)]),
      'DistributorInvalidProof',
    )
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([carol, 1n * WAD, 1n, [`0x${'ab'.repeat(32)}`]]),
      'DistributorInvalidProof',
    )
    expect(await balance(alice)).toBe(0n)
    expect(
      await net.contracts.rewardDistributor.getEvents.Claimed({}, { fromBlock: net.deployment.startBlock }),
    ).toEqual([])
  })

  it('only the EpochManager settles epochs', async () => {
    await expectRevert(
      net.contracts.rewardDistributor.write.settle([1n, `0x${'11'.repeat(32)}`, 1n]),
      'DistributorUnauthorized',
    )
  })
})

describe('RewardDistributor: the ring of the last ROOT_RING_SIZE roots', () => {
  /** Settles epochs 1–4, alice's cumulative amount growing 10, 12, 15, 21 (bob's 1, 2, 3, 4); returns the trees. */
  async function settleFourEpochs() {
    const trees = []
    let before = 0n
    for (const [i, amount] of [10n, 12n, 15n, 21n].entries()) {
      const epoch = BigInt(i + 1)
      const cumulative: [Address, bigint][] = [
        [alice, amount * WAD],
        [bob, epoch * WAD],
      ]
      const sum = (amount + epoch) * WAD
      trees.push(await settle(epoch, cumulative, sum - before))
      before = sum
    }
    return trees as [Tree, Tree, Tree, Tree]
  }
  type Tree = StandardMerkleTree<[Address, bigint]>

  it("pays a claim with a proof three roots old exactly that root's amount, and the rest against the latest", async () => {
    const [first, , , latest] = await settleFourEpochs()
    const distributor = net.contracts.rewardDistributor
    expect(await distributor.read.rootEpoch()).toBe(4n)
    expect(await distributor.read.rewardsRoot()).toBe(latest.root)
    expect(await distributor.read.rewardsRootOf([1n])).toBe(first.root)

    await net.send(distributor.write.claim([alice, 10n * WAD, 1n, proofOf(first, alice)]))
    expect(await balance(alice)).toBe(10n * WAD)
    expect(await distributor.read.claimed([alice])).toBe(10n * WAD)

    await net.send(distributor.write.claim([alice, 21n * WAD, 4n, proofOf(latest, alice)]))
    expect(await balance(alice)).toBe(21n * WAD)
    const claims = await distributor.getEvents.Claimed(
      { account: alice },
      { fromBlock: net.deployment.startBlock },
    )
    expect(claims.map((c) => [c.args.amount, c.args.cumulativeAmount])).toEqual([
      [10n * WAD, 10n * WAD],
      [11n * WAD, 21n * WAD],
    ])
  })

  it('pays nothing more for a claim against an older root after one against a newer root', async () => {
    const [first, second, third] = await settleFourEpochs()
    const distributor = net.contracts.rewardDistributor
    await net.send(distributor.write.claim([alice, 15n * WAD, 3n, proofOf(third, alice)]))
    for (const [epoch, tree, amount] of [
      [1n, first, 10n * WAD],
      [2n, second, 12n * WAD],
      [3n, third, 15n * WAD],
    ] as const) {
      const args = await expectRevert(
        distributor.write.claim([alice, amount, epoch, proofOf(tree, alice)]),
        'DistributorNothingToClaim',
      )
      expect(args).toEqual([alice, amount, 15n * WAD])
    }
    expect(await balance(alice)).toBe(15n * WAD)
  })

  it('checks the proof against the root of the epoch the claim names', async () => {
    const [first] = await settleFourEpochs()
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 10n * WAD, 2n, proofOf(first, alice)]),
      'DistributorInvalidProof',
    )
    expect(await balance(alice)).toBe(0n)
  })

  it('drops a root once an epoch ROOT_RING_SIZE later settles: its claims revert with DistributorRootExpired', async () => {
    const distributor = net.contracts.rewardDistributor
    const ring = await distributor.read.ROOT_RING_SIZE()
    expect(ring).toBe(32n)
    const first = await settle(
      1n,
      [
        [alice, 10n * WAD],
        [bob, 5n * WAD],
      ],
      15n * WAD,
    )
    for (let epoch = 2n; epoch <= ring; epoch++) {
      const report = makeReport(epoch, keccak256(toHex(`rewards ${epoch}`)), 0n)
      await net.closeEpoch(epoch)
      await net.send(
        net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
      )
    }
    // ROOT_RING_SIZE − 1 roots later, epoch 1's still pays
    expect(await distributor.read.rewardsRootOf([1n])).toBe(first.root)
    await net.send(distributor.write.claim([bob, 5n * WAD, 1n, proofOf(first, bob)]))
    expect(await balance(bob)).toBe(5n * WAD)

    const report = makeReport(ring + 1n, keccak256(toHex('rewards last')), 0n)
    await net.closeEpoch(ring + 1n)
    await net.send(
      net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
    )
    expect(await distributor.read.rewardsRootOf([1n])).toBe(`0x${'00'.repeat(32)}`)
    expect(await distributor.read.rewardsRootOf([2n])).toBe(keccak256(toHex('rewards 2')))
    expect(await distributor.read.rewardsRootOf([ring + 1n])).toBe(keccak256(toHex('rewards last')))
    const args = await expectRevert(
      distributor.write.claim([alice, 10n * WAD, 1n, proofOf(first, alice)]),
      'DistributorRootExpired',
    )
    expect(args).toEqual([1n])
    expect(await balance(alice)).toBe(0n)
  })

  it('refuses a claim naming an epoch that did not settle, or not yet', async () => {
    const tree = await settle(
      1n,
      [
        [alice, 10n * WAD],
        [bob, 5n * WAD],
      ],
      15n * WAD,
    )
    const ring = await net.contracts.rewardDistributor.read.ROOT_RING_SIZE()
    // epoch 1 + ROOT_RING_SIZE shares epoch 1's slot but has not settled
    for (const epoch of [0n, 2n, ring + 1n]) {
      const args = await expectRevert(
        net.contracts.rewardDistributor.write.claim([alice, 10n * WAD, epoch, proofOf(tree, alice)]),
        'DistributorNoRoot',
      )
      expect(args).toEqual([epoch])
      expect(await net.contracts.rewardDistributor.read.rewardsRootOf([epoch])).toBe(`0x${'00'.repeat(32)}`)
    }
    // an epoch skipped: its slot holds nothing, and a later root takes none but its own
    await settle(
      3n,
      [
        [alice, 12n * WAD],
        [bob, 5n * WAD],
      ],
      2n * WAD,
    )
    await expectRevert(
      net.contracts.rewardDistributor.write.claim([alice, 10n * WAD, 2n, proofOf(tree, alice)]),
      'DistributorNoRoot',
    )
    await net.send(net.contracts.rewardDistributor.write.claim([alice, 10n * WAD, 1n, proofOf(tree, alice)]))
    expect(await balance(alice)).toBe(10n * WAD)
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
    await net.send(net.contracts.rewardDistributor.write.claim([leaf.account, leaf.cumulativeAmount, 1n, []]))
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
        net.contracts.rewardDistributor.write.claim([leaf.account, leaf.cumulativeAmount, 1n, proof]),
      )
    }
    for (const leaf of leaves) expect(await balance(leaf.account)).toBe(leaf.cumulativeAmount)
    expect(await balance(net.deployment.contracts.rewardDistributor)).toBe(0n)
  })
})
