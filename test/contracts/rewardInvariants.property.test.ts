/**
 * Property test: random sequences of epoch reports (some asking for more than the emission and
 * fee pool allow), fee deposits, honest claims and forged claims, on a real chain. After every
 * step: total claimed ≤ total reported ≤ emission of settled epochs + fees received; no account
 * holds more than its cumulative amount; the distributor holds exactly what is owed plus fees.
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
  WAD,
} from '../helpers/testNetwork.ts'

const ACCOUNTS = 5

let net: TestNetwork
let validators: Awaited<ReturnType<typeof joinValidators>>
let accounts: Address[]

beforeAll(async () => {
  net = await startTestNetwork()
  validators = await joinValidators(net, 4)
  accounts = []
  for (let i = 0; i < ACCOUNTS; i++) accounts.push((await net.actor()).address)
})
afterAll(async () => net?.stop())

type Step =
  | { type: 'report'; increments: bigint[]; skip: number }
  | { type: 'fees'; amount: bigint }
  | { type: 'claim'; who: number }
  | { type: 'forgedClaim'; who: number; extra: bigint }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('report' as const),
      increments: fc.array(fc.bigInt({ min: 0n, max: 40n * WAD }), {
        minLength: ACCOUNTS,
        maxLength: ACCOUNTS,
      }),
      skip: fc.integer({ min: 0, max: 6 }),
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
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('claim' as const),
      who: fc.integer({ min: 0, max: ACCOUNTS - 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('forgedClaim' as const),
      who: fc.integer({ min: 0, max: ACCOUNTS - 1 }),
      extra: fc.bigInt({ min: 1n, max: 10n * WAD }),
    }),
  },
)

describe('reward invariants under random reports and claims', () => {
  it('never pays more than reported, nor reports more than emission plus fees', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 14 }), async (steps) => {
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

async function runSteps(steps: Step[]) {
  const { depinToken, rewardDistributor, epochManager } = net.contracts
  const distributor = net.deployment.contracts.rewardDistributor
  const cumulative = accounts.map(() => 0n)
  let tree: StandardMerkleTree<[Address, bigint]> | undefined
  let emittedCap = 0n
  let epoch = (await epochManager.read.currentEpoch()) + 1n

  for (const s of steps) {
    if (s.type === 'report') {
      epoch += BigInt(s.skip)
      await net.closeEpoch(epoch)
      const next = cumulative.map((c, i) => c + (s.increments[i] ?? 0n))
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
        next.forEach((c, i) => {
          cumulative[i] = c
        })
        tree = candidate
        emittedCap += emission
      }
      epoch += 1n
    } else if (s.type === 'fees') {
      await net.send(depinToken.write.approve([distributor, s.amount]))
      await net.send(rewardDistributor.write.depositFees([s.amount]))
    } else {
      const account = accounts[s.who] as Address
      const owed = cumulative[s.who] ?? 0n
      const proof = tree ? (tree.getProof([account, owed]) as Hex[]) : []
      if (s.type === 'forgedClaim') {
        await expectRevert(
          rewardDistributor.write.claim([account, owed + s.extra, proof]),
          tree ? 'DistributorInvalidProof' : 'DistributorNoRoot',
        )
      } else if (!tree) {
        await expectRevert(rewardDistributor.write.claim([account, owed, proof]), 'DistributorNoRoot')
      } else if (owed === (await rewardDistributor.read.claimed([account]))) {
        await expectRevert(rewardDistributor.write.claim([account, owed, proof]), 'DistributorNothingToClaim')
      } else {
        await net.send(rewardDistributor.write.claim([account, owed, proof]))
      }
    }

    const [totalClaimed, totalReported, feesReceived, feePool, held] = await Promise.all([
      rewardDistributor.read.totalClaimed(),
      rewardDistributor.read.totalReported(),
      rewardDistributor.read.totalFeesReceived(),
      rewardDistributor.read.feePool(),
      depinToken.read.balanceOf([distributor]),
    ])
    expect(totalClaimed).toBeLessThanOrEqual(totalReported)
    expect(totalReported).toBeLessThanOrEqual(emittedCap + feesReceived)
    expect(held).toBe(totalReported - totalClaimed + feePool)
    for (const [i, account] of accounts.entries()) {
      const received = await depinToken.read.balanceOf([account])
      expect(received).toBeLessThanOrEqual(cumulative[i] ?? 0n)
      expect(received).toBe(await rewardDistributor.read.claimed([account]))
    }
  }
}
