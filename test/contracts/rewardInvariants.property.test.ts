/**
 * Property test: random sequences of epoch reports (some asking for more than the emission and
 * fee pool allow, some skipping far enough ahead to push roots out of the distributor's ring),
 * fee deposits, honest claims and forged claims, each against a random root of the ring (or one
 * that has left it), on a real chain. After every step: no account has received more than its
 * latest cumulative amount, whichever roots its claims used; each claim paid exactly its root's
 * amount minus what the account was already paid; total claimed ≤ total reported ≤ emission of
 * settled epochs + fees received; the distributor holds exactly what is owed plus fees.
 */
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import fc from 'fast-check'
import type { Address, Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectRevert } from '../helpers/expectRevert.ts'
import {
  joinValidators,
  makeReport,
  signReport,
  startTestNetwork,
  type TestNetwork,
  testParameters,
  WAD,
} from '../helpers/testNetwork.ts'

const ACCOUNTS = 5
const ZERO_ROOT = `0x${'00'.repeat(32)}`
/** RewardDistributor.ROOT_RING_SIZE (checked against the contract before the runs). */
const RING = 32

let net: TestNetwork
let validators: Awaited<ReturnType<typeof joinValidators>>
let accounts: Address[]

beforeAll(async () => {
  // no halving for the length of a run: the emission stays 100 tokens an epoch, so reports of up
  // to 200 settle about half the time however far a run skips ahead
  net = await startTestNetwork({
    ...testParameters,
    token: { ...testParameters.token, halvingInterval: 100_000n },
  })
  validators = await joinValidators(net, 4)
  accounts = []
  for (let i = 0; i < ACCOUNTS; i++) accounts.push((await net.actor()).address)
  expect(await net.contracts.rewardDistributor.read.ROOT_RING_SIZE()).toBe(BigInt(RING))
})
afterAll(async () => net?.stop())

type Step =
  | { type: 'report'; increments: bigint[]; skip: number }
  | { type: 'fees'; amount: bigint }
  | { type: 'claim'; who: number; age: number }
  | { type: 'forgedClaim'; who: number; age: number; extra: bigint }

/** Which settled root a claim uses: 0 the latest, 1 the one before, … (beyond the oldest: the oldest). */
const age = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 20 }))

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('report' as const),
      increments: fc.array(fc.bigInt({ min: 0n, max: 40n * WAD }), {
        minLength: ACCOUNTS,
        maxLength: ACCOUNTS,
      }),
      // mostly the next few epochs; now and then about RING ahead, into the slots of the last few
      // settled epochs (their roots leave the ring) or just past them
      skip: fc.oneof(
        { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }) },
        { weight: 1, arbitrary: fc.integer({ min: RING - 5, max: RING + 1 }) },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('fees' as const),
      amount: fc.bigInt({ min: 1n, max: 50n * WAD }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.constant('claim' as const),
      who: fc.integer({ min: 0, max: ACCOUNTS - 1 }),
      age,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('forgedClaim' as const),
      who: fc.integer({ min: 0, max: ACCOUNTS - 1 }),
      age,
      extra: fc.bigInt({ min: 1n, max: 10n * WAD }),
    }),
  },
)

describe('reward invariants under random reports and claims', () => {
  it('never pays more than reported, nor reports more than emission plus fees', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 20 }), async (steps) => {
        const snapshot = await net.snapshot()
        try {
          await runSteps(steps)
        } finally {
          await net.revert(snapshot)
        }
      }),
      { numRuns: 40 },
    )
  })
})

/** A settled epoch as the model knows it: its tree and every account's cumulative amount in it. */
type Settled = { epoch: bigint; tree: StandardMerkleTree<[Address, bigint]>; cumulative: bigint[] }

async function runSteps(steps: Step[]) {
  const { depinToken, rewardDistributor, epochManager } = net.contracts
  const distributor = net.deployment.contracts.rewardDistributor
  const settled: Settled[] = []
  /** What each account has been paid: the largest amount among the roots its claims used. */
  const paid = accounts.map(() => 0n)
  let emittedCap = 0n
  let epoch = (await epochManager.read.currentEpoch()) + 1n
  /** The ring holds a settled epoch until a later settled epoch falls into its slot. */
  const inRing = (e: bigint) =>
    !settled.some((s) => s.epoch > e && s.epoch % BigInt(RING) === e % BigInt(RING))

  for (const s of steps) {
    if (s.type === 'report') {
      epoch += BigInt(s.skip)
      await net.closeEpoch(epoch)
      const latest = settled.at(-1)?.cumulative ?? accounts.map(() => 0n)
      const next = latest.map((c, i) => c + (s.increments[i] ?? 0n))
      const total = s.increments.reduce((a, b) => a + b, 0n)
      const candidate = StandardMerkleTree.of(
        accounts.map((a, i) => [a, next[i] ?? 0n] as [Address, bigint]),
        ['address', 'uint256'],
      )
      const report = makeReport(epoch, candidate.root as Hex, total)
      const signatures = await signReport(net, validators, report)
      const emission = await depinToken.read.emissionFor([epoch])
      const fees = await rewardDistributor.read.feePool()
      const submit = epochManager.write.submitReport([report, signatures])
      if (total > emission + fees) {
        await expectRevert(submit, 'DistributorTotalExceedsFunds')
      } else {
        await net.send(submit)
        settled.push({ epoch, tree: candidate, cumulative: next })
        emittedCap += emission
      }
      epoch += 1n
    } else if (s.type === 'fees') {
      await net.send(depinToken.write.approve([distributor, s.amount]))
      await net.send(rewardDistributor.write.depositFees([s.amount]))
    } else {
      const account = accounts[s.who] as Address
      const root = settled[Math.max(0, settled.length - 1 - s.age)]
      if (!root) {
        // nothing settled yet: no epoch has a root
        await expectRevert(rewardDistributor.write.claim([account, 1n, epoch, []]), 'DistributorNoRoot')
      } else {
        const owed = root.cumulative[s.who] ?? 0n
        const proof = root.tree.getProof([account, owed]) as Hex[]
        const claimed = await rewardDistributor.read.claimed([account])
        expect(claimed).toBe(paid[s.who])
        if (!inRing(root.epoch)) {
          await expectRevert(
            rewardDistributor.write.claim([account, owed, root.epoch, proof]),
            'DistributorRootExpired',
          )
        } else if (s.type === 'forgedClaim') {
          await expectRevert(
            rewardDistributor.write.claim([account, owed + s.extra, root.epoch, proof]),
            'DistributorInvalidProof',
          )
        } else if (owed <= claimed) {
          await expectRevert(
            rewardDistributor.write.claim([account, owed, root.epoch, proof]),
            'DistributorNothingToClaim',
          )
        } else {
          const before = await depinToken.read.balanceOf([account])
          await net.send(rewardDistributor.write.claim([account, owed, root.epoch, proof]))
          expect(await depinToken.read.balanceOf([account])).toBe(before + owed - claimed)
          paid[s.who] = owed
        }
      }
    }

    const [totalReported, feesReceived, feePool, held] = await Promise.all([
      rewardDistributor.read.totalReported(),
      rewardDistributor.read.totalFeesReceived(),
      rewardDistributor.read.feePool(),
      depinToken.read.balanceOf([distributor]),
    ])
    const latest = settled.at(-1)?.cumulative ?? accounts.map(() => 0n)
    let totalClaimed = 0n
    for (const [i, account] of accounts.entries()) {
      const received = await depinToken.read.balanceOf([account])
      expect(received).toBeLessThanOrEqual(latest[i] ?? 0n)
      expect(received).toBe(paid[i])
      expect(received).toBe(await rewardDistributor.read.claimed([account]))
      totalClaimed += received
    }
    expect(totalClaimed).toBeLessThanOrEqual(totalReported)
    expect(totalReported).toBeLessThanOrEqual(emittedCap + feesReceived)
    expect(held).toBe(totalReported - totalClaimed + feePool)
    // the ring holds exactly the roots the model says it does
    for (const { epoch: e, tree } of settled)
      expect(await rewardDistributor.read.rewardsRootOf([e])).toBe(inRing(e) ? tree.root : ZERO_ROOT)
  }
  // the Claimed events add up to what the accounts received
  const events = await rewardDistributor.getEvents.Claimed({}, { fromBlock: net.deployment.startBlock })
  expect(events.reduce((sum, e) => sum + (e.args.amount ?? 0n), 0n)).toBe(paid.reduce((a, b) => a + b, 0n))
}
