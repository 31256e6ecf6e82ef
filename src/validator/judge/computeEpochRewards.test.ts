import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import fc from 'fast-check'
import { type Address, getAddress } from 'viem'
import { describe, expect, it } from 'vitest'
import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import { EMPTY_REWARDS_ROOT } from '../../rewards/rewardsTree.ts'
import { computeEpochRewards } from './computeEpochRewards.ts'
import type { DeviceScore } from './judgement.ts'
import { environment, ownerAddress } from './testFleet.ts'

/** The environment blueprint with a small emission, so amounts are easy to check by hand. */
const small: Blueprint = {
  ...environment,
  token: { ...environment.token, initialEpochEmission: 1000n, halvingIntervalEpochs: 100 },
}
const X = ownerAddress('x')
const Y = ownerAddress('y')
const [V1, V2, V3] = [ownerAddress('v1'), ownerAddress('v2'), ownerAddress('v3')]
const lower = (a: Address) => a.toLowerCase()
/** A map by lower-case account, accounts ascending, as computeEpochRewards returns them. */
const byAccount = (...entries: [Address, bigint][]) =>
  new Map(entries.map(([a, v]): [string, bigint] => [lower(a), v]).sort(([a], [b]) => (a < b ? -1 : 1)))

function score(device: string, owner: Address, accepted: number, submitted: number): DeviceScore {
  const qualityBps = Number((BigInt(accepted) * 10_000n) / BigInt(submitted))
  return {
    device: ownerAddress(`device ${device}`),
    owner,
    submitted,
    accepted,
    rejected: [submitted - accepted],
    units: { qualityBps, uptimeBps: Math.min(10_000, Number((BigInt(accepted) * 10_000n) / 6n)) },
    weight: BigInt(accepted) * BigInt(qualityBps),
  }
}

/** OpenZeppelin's root over the same cumulative amounts, checksummed accounts. */
const ozRoot = (cumulative: Map<string, bigint>) =>
  StandardMerkleTree.of(
    [...cumulative].filter(([, v]) => v > 0n).map(([a, v]) => [getAddress(a), v]),
    ['address', 'uint256'],
  ).root

describe('computeEpochRewards', () => {
  it('splits a small epoch exactly: owners across devices, validators in equal shares, dust unminted', () => {
    // weights 60000 (A, owner X), 30000 (B, owner Y), 15000 (C, owner X): Σ = 105000
    const scores = [score('A', X, 6, 6), score('B', Y, 6, 12), score('C', X, 3, 6)]
    expect(scores.map((s) => s.weight)).toEqual([60_000n, 30_000n, 15_000n])
    const rewards = computeEpochRewards({
      blueprint: small,
      epoch: 3n,
      scores,
      previousSigners: [V1, V2, V3],
      previousCumulative: new Map(),
    })
    // emission 1000: device pool 900, validator pool 100
    expect(rewards.emission).toBe(1000n)
    // A: 900 × 60000 / 105000 = 514.28 → 514; B: 257.14 → 257; C: 128.57 → 128
    expect(rewards.perOwner).toEqual(byAccount([X, 642n], [Y, 257n]))
    // 100 / 3 = 33 each, 1 left
    expect(rewards.perValidator).toEqual(byAccount([V1, 33n], [V2, 33n], [V3, 33n]))
    expect(rewards.total).toBe(642n + 257n + 99n)
    expect(rewards.cumulative).toEqual(byAccount([X, 642n], [Y, 257n], [V1, 33n], [V2, 33n], [V3, 33n]))
    expect(rewards.rewardsRoot).toBe(ozRoot(rewards.cumulative))
    expect(rewards.tree?.size).toBe(5)
    expect([...rewards.perOwner.keys()]).toEqual([...rewards.perOwner.keys()].sort())
  })

  it('halves the emission every halvingIntervalEpochs, like DepinToken.emissionFor', () => {
    const rewards = computeEpochRewards({
      blueprint: small,
      epoch: 250n,
      scores: [score('A', X, 6, 6)],
      previousSigners: [V1],
      previousCumulative: new Map(),
    })
    expect(rewards.emission).toBe(250n)
    expect(rewards.perOwner.get(lower(X))).toBe(225n)
    expect(rewards.perValidator.get(lower(V1))).toBe(25n)
    expect(rewards.total).toBe(250n)
  })

  it('leaves the validator pool unpaid without previous signers, the device pool without weight', () => {
    const noSigners = computeEpochRewards({
      blueprint: small,
      epoch: 0n,
      scores: [score('A', X, 6, 6)],
      previousSigners: [],
      previousCumulative: new Map(),
    })
    expect(noSigners.total).toBe(900n)
    expect(noSigners.perValidator.size).toBe(0)
    const noWeight = computeEpochRewards({
      blueprint: small,
      epoch: 0n,
      scores: [score('A', X, 0, 6)],
      previousSigners: [V1, V2],
      previousCumulative: new Map(),
    })
    expect(noWeight.perOwner.size).toBe(0)
    expect(noWeight.total).toBe(100n)
  })

  it('counts a signer once however it is spelled', () => {
    const rewards = computeEpochRewards({
      blueprint: small,
      epoch: 0n,
      scores: [],
      previousSigners: [V1, lower(V1) as Address, V2],
      previousCumulative: new Map(),
    })
    expect(rewards.perValidator).toEqual(byAccount([V1, 50n], [V2, 50n]))
  })

  it('commits to cumulative amounts across epochs, an owner that is also a validator summed', () => {
    const first = computeEpochRewards({
      blueprint: small,
      epoch: 1n,
      scores: [score('A', X, 6, 6), score('B', Y, 6, 6)],
      previousSigners: [],
      previousCumulative: new Map(),
    })
    expect(first.cumulative).toEqual(byAccount([X, 450n], [Y, 450n]))
    const second = computeEpochRewards({
      blueprint: small,
      epoch: 2n,
      scores: [score('A', X, 6, 6)],
      previousSigners: [Y, V1],
      previousCumulative: first.cumulative,
    })
    expect(second.total).toBe(1000n)
    expect(second.cumulative).toEqual(byAccount([X, 1350n], [Y, 500n], [V1, 50n]))
    expect(second.rewardsRoot).toBe(ozRoot(second.cumulative))
    const proof = second.tree?.getProof(X)
    expect(
      StandardMerkleTree.verify(second.rewardsRoot, ['address', 'uint256'], [X, 1350n], proof ?? []),
    ).toBe(true)
    expect(second.tree?.leafAt(second.tree.indexOf(X) ?? -1)).toEqual({ account: X, cumulativeAmount: 1350n })
  })

  it('uses the empty sentinel when nobody has anything to claim', () => {
    const rewards = computeEpochRewards({
      blueprint: small,
      epoch: 0n,
      scores: [],
      previousSigners: [],
      previousCumulative: new Map([[lower(X), 0n]]),
    })
    expect(rewards).toMatchObject({ total: 0n, rewardsRoot: EMPTY_REWARDS_ROOT, tree: undefined })
  })

  it('refuses negative weights and negative cumulative amounts', () => {
    const base = {
      blueprint: small,
      epoch: 0n,
      previousSigners: [],
      previousCumulative: new Map<string, bigint>(),
    }
    expect(() => computeEpochRewards({ ...base, scores: [{ ...score('A', X, 6, 6), weight: -1n }] })).toThrow(
      /negative weight/,
    )
    expect(() =>
      computeEpochRewards({ ...base, scores: [], previousCumulative: new Map([[lower(X), -1n]]) }),
    ).toThrow(/negative cumulative/)
  })

  it('never pays more than the emission, and the parts always add up to the total (property)', () => {
    const owners = Array.from({ length: 6 }, (_, i) => ownerAddress(`prop-owner-${i}`))
    const signerPool = Array.from({ length: 8 }, (_, i) => ownerAddress(`prop-signer-${i}`))
    const arbitraryScore = fc.record({
      owner: fc.constantFrom(...owners),
      accepted: fc.nat({ max: 10_000 }),
      extra: fc.nat({ max: 10_000 }),
    })
    fc.assert(
      fc.property(
        fc.array(arbitraryScore, { maxLength: 30 }),
        fc.subarray(signerPool),
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.bigInt({ min: 0n, max: 1000n }),
        (raw, signers, initialEpochEmission, deviceShareBps, epoch) => {
          const blueprint: Blueprint = {
            ...small,
            token: { ...small.token, initialEpochEmission, halvingIntervalEpochs: 7 },
            rewards: { deviceShareBps, validatorShareBps: 10_000 - deviceShareBps },
          }
          const scores = raw.map((r, i) =>
            score(String(i), r.owner, r.accepted, Math.max(1, r.accepted + r.extra)),
          )
          const rewards = computeEpochRewards({
            blueprint,
            epoch,
            scores,
            previousSigners: signers,
            previousCumulative: new Map(),
          })
          const sum = (m: Map<string, bigint>) => [...m.values()].reduce((a, b) => a + b, 0n)
          expect(rewards.total).toBeLessThanOrEqual(rewards.emission)
          expect(sum(rewards.perOwner) + sum(rewards.perValidator)).toBe(rewards.total)
          expect(sum(rewards.cumulative)).toBe(rewards.total)
          // the dust is less than one unit per payee
          const paidPools =
            (scores.some((s) => s.weight > 0n) ? 0n : (rewards.emission * BigInt(deviceShareBps)) / 10_000n) +
            (signers.length > 0
              ? 0n
              : rewards.emission - (rewards.emission * BigInt(deviceShareBps)) / 10_000n)
          expect(rewards.emission - paidPools - rewards.total).toBeLessThan(
            BigInt(scores.length + signers.length + 1),
          )
          // the order of the scores does not matter
          const reversed = computeEpochRewards({
            blueprint,
            epoch,
            scores: [...scores].reverse(),
            previousSigners: [...signers].reverse(),
            previousCumulative: new Map(),
          })
          expect(reversed.rewardsRoot).toBe(rewards.rewardsRoot)
          expect([...reversed.cumulative]).toEqual([...rewards.cumulative])
        },
      ),
      { numRuns: 300 },
    )
  })
})
