/**
 * A fixed vector of the environment use case, pinned before the pipeline is made general (issue:
 * use-case modules): a seeded fleet of 24 stations with every value fault and forged signatures,
 * three epochs of readings, judged and rewarded on top of one another exactly as a validator
 * does. Moving the environment into a module of its own must leave every verdict and every root
 * byte-identical: if this test fails, behaviour changed.
 */
import { bytesToHex, type Hex, keccak256, toHex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import type { SignedReading } from '../../readings/reading.ts'
import { signReading } from '../../readings/signReading.ts'
import { computeEpochRewards } from '../../validator/judge/computeEpochRewards.ts'
import { epochReceipts } from '../../validator/judge/epochReceipts.ts'
import { judgeEpoch } from '../../validator/judge/judgeEpoch.ts'
import type { DeviceRecord } from '../../validator/judge/judgement.ts'
import {
  CHAIN_ID,
  DEVICE_REGISTRY,
  environment,
  type JudgeHashing,
  loadJudgeHashing,
  ownerAddress,
} from '../../validator/judge/testFleet.ts'
import { environment as environmentUseCase } from './index.ts'
import { createFleet } from './simulator/createFleet.ts'

const GENESIS = 1_764_201_600n // 2025-11-27T00:00:00Z, an epoch boundary
const EPOCH_LENGTH = 30n
const INTERVAL = 6n
const VALIDATORS = [ownerAddress('validator a'), ownerAddress('validator b'), ownerAddress('validator c')]

let hashing: JudgeHashing
beforeAll(async () => {
  hashing = await loadJudgeHashing()
})

/** The vector's three epochs: per epoch the report's fields and a hash of every verdict. */
async function runVector() {
  const fleet = createFleet({
    size: 24,
    blueprint: environment,
    seed: 20261201,
    startTime: GENESIS,
    faults: { stuck: 2, outOfRange: 2, drift: 2, liar: 2, forged: 2 },
  })
  const devices = new Map<string, DeviceRecord>(
    fleet.stations.map((s, i) => [
      s.account.address.toLowerCase(),
      {
        device: s.account.address,
        owner: ownerAddress(`owner ${i % 5}`),
        deviceClass: fleet.deviceClass.id,
        h3Cell: s.h3Cell,
        status: 'active',
      },
    ]),
  )
  const seq = new Map<number, bigint>()
  let cumulative: ReadonlyMap<string, bigint> = new Map()
  let previousSigners: readonly Hex[] = []
  const epochs = []
  for (let epoch = 0n; epoch < 3n; epoch++) {
    const start = GENESIS + epoch * EPOCH_LENGTH
    const readings: SignedReading[] = []
    for (let time = start + 1n; time < start + EPOCH_LENGTH; time += INTERVAL) {
      for (const { station, values } of fleet.readingsAt(time)) {
        const next = (seq.get(station.index) ?? 0n) + 1n
        seq.set(station.index, next)
        // a forged station's readings are signed by another key
        const account = station.impostor ?? station.account
        const signed = await signReading({
          account,
          chainId: CHAIN_ID,
          deviceRegistry: DEVICE_REGISTRY,
          seq: next,
          time,
          values,
        })
        readings.push({ ...signed, device: station.account.address })
      }
    }
    const judged = judgeEpoch({
      blueprint: environment,
      epoch,
      epochStart: start,
      epochEnd: start + EPOCH_LENGTH,
      readings,
      devices,
      ...hashing,
    })
    const rewards = computeEpochRewards({
      blueprint: environment,
      epoch,
      scores: judged.devices,
      previousSigners,
      previousCumulative: cumulative,
    })
    // receipts (added after the vector was pinned: the roots above them are unchanged)
    const { receipts, receiptsRoot } = epochReceipts({
      epoch,
      useCase: environmentUseCase,
      scores: judged.devices,
      rewards,
      keccak: hashing.keccak,
    })
    const paidByOwner = new Map<string, bigint>()
    for (const r of receipts) {
      expect(r.rejected.reduce((a, b) => a + b, 0)).toBe(r.submitted - r.accepted)
      expect(r.reward).toBe((r.devicePool * r.weight) / r.totalWeight)
      const owner = r.owner.toLowerCase()
      paidByOwner.set(owner, (paidByOwner.get(owner) ?? 0n) + r.reward)
    }
    expect(new Map([...paidByOwner].sort())).toEqual(rewards.perOwner)
    const verdicts = judged.judged.map(
      (j) =>
        `${j.reading.device.toLowerCase()}:${j.reading.seq}:${bytesToHex(j.digest)}:${j.verdict.type === 'accepted' ? 'accepted' : j.verdict.reason}`,
    )
    epochs.push({
      epoch,
      readings: readings.length,
      accepted: judged.accepted,
      readingsRoot: judged.readingsRoot,
      rewardsRoot: rewards.rewardsRoot,
      receiptsRoot,
      total: rewards.total.toString(),
      rejected: Object.fromEntries(Object.entries(judged.rejectedByReason).filter(([, n]) => n > 0)),
      verdictsHash: keccak256(toHex(verdicts.join('\n'))),
    })
    cumulative = rewards.cumulative
    previousSigners = VALIDATORS
  }
  return epochs
}

describe('the environment use case: a fixed vector', () => {
  it('gives the pinned verdicts, readings roots and rewards roots, and twice the same', async () => {
    const first = await runVector()
    expect(await runVector()).toEqual(first)
    // the rules' outcome is pinned with the version that enters every network's rules hash: a
    // change of this vector is a change of rules, and goes with a new version of the use case
    expect(environmentUseCase.version).toBe(1)
    expect(first).toMatchInlineSnapshot(`
      [
        {
          "accepted": 86,
          "epoch": 0n,
          "readings": 120,
          "readingsRoot": "0xf691e2749fa3da593940012915e7cf7577fb12aa3cb7986ded37ec068852671d",
          "receiptsRoot": "0xfc3b25c436af5710d47aa1b9b86ab6999752ab6e11cfb1ed89eb233969d8fc31",
          "rejected": {
            "OUT_OF_RANGE": 10,
            "SIGNATURE_INVALID": 10,
            "SPATIAL_OUTLIER": 10,
            "STUCK_VALUE": 4,
          },
          "rewardsRoot": "0x4c0a5e76c3508368f7c66afba43ae6ac90aec1c495b43bff6807dd890b4a2485",
          "total": "899999999999999999986",
          "verdictsHash": "0x6b5f3181387e219f71d05772ccbafa8935cc696e05eb23376f776ffa92a9bcce",
        },
        {
          "accepted": 86,
          "epoch": 1n,
          "readings": 120,
          "readingsRoot": "0xecbf28c90ed61b77e2f5fc72503b55cb3b107b33ed6c138cce8515e3f6b248ee",
          "receiptsRoot": "0xa7c66b39475459e2d1a510d10aea0386c80b3508b7c52ba93362cde6e346aba3",
          "rejected": {
            "OUT_OF_RANGE": 10,
            "SIGNATURE_INVALID": 10,
            "SPATIAL_OUTLIER": 10,
            "STUCK_VALUE": 4,
          },
          "rewardsRoot": "0x579bda893b5916d0f8a6a59007bd96b0c741a4f09d57cfc79cbf398cdd45a961",
          "total": "999999999999999999985",
          "verdictsHash": "0xd6533aeca4d2d8f4dfd634fd2270c68a0b1132ad11f8db0a052a49535bfab8c6",
        },
        {
          "accepted": 86,
          "epoch": 2n,
          "readings": 120,
          "readingsRoot": "0xec1dfb4a1da056ab6724b0e8b3101fccddaad1ff3bff5feac6fb0496127cc48a",
          "receiptsRoot": "0x0186c4dfb4bc0f743b2c029b3e0c5024b5a9b1a7c84b37fb5a1753040f3aec03",
          "rejected": {
            "OUT_OF_RANGE": 10,
            "SIGNATURE_INVALID": 10,
            "SPATIAL_OUTLIER": 10,
            "STUCK_VALUE": 4,
          },
          "rewardsRoot": "0x6ecbe1f1eb5013f68215b05e366b63a2aae4436fe303b80819534e8e872aaf89",
          "total": "999999999999999999985",
          "verdictsHash": "0x411942a69f96dba174e1758aa01e6de02a5b77b466965fc6415fdefee0c7d7d2",
        },
      ]
    `)
  }, 60_000)
})
