/**
 * Connectivity records through the shared pipeline's own code: signed as EIP-712 records of their
 * kinds, parsed from the wire as a gateway does, sealed into a batch and decoded as a validator
 * does, judged by the shared judge with the connectivity use case and scored into receipts — the
 * same outcome as the rules give on the raw records.
 */
import { type Address, keccak256, toHex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../crypto/keccak.ts'
import { compareReadings, decodeBatch, encodeBatch } from '../../gateway/batchFormat.ts'
import { parseReadings } from '../../gateway/checkReadings.ts'
import { createReadingHasher } from '../../readings/createReadingHasher.ts'
import { toRecordJson } from '../../readings/reading.ts'
import { computeEpochRewards } from '../../validator/judge/computeEpochRewards.ts'
import { createSignatureCheckPool } from '../../validator/judge/createSignatureCheckPool.ts'
import { epochReceipts } from '../../validator/judge/epochReceipts.ts'
import { judgeEpoch } from '../../validator/judge/judgeEpoch.ts'
import { judgeEpochInParallel } from '../../validator/judge/judgeEpochInParallel.ts'
import { coverageWeight, judgeCoverage } from './coverageRules.ts'
import { connectivity, coverageOf } from './index.ts'
import {
  coverageRegistry,
  createCoverageFleet,
  signCoverageRecords,
  simulateCoverageEpoch,
} from './simulateCoverage.ts'

const network = { chainId: 31337, deviceRegistry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512' as Address }
const blueprint = loadBlueprint('blueprints/connectivity.yaml')
const epoch = 4n
const epochStart = 1_764_201_600n + epoch * 30n
const randomness = keccak256(toHex('pipeline randomness'))

describe('connectivity through the shared pipeline', () => {
  let keccak: Awaited<ReturnType<typeof loadKeccak256>>
  beforeAll(async () => {
    keccak = await loadKeccak256()
  })

  it('judges signed Beacon and Witness records from a sealed batch as the rules judge the raw records', async () => {
    const { parameters, radios } = coverageOf(blueprint)
    const fleet = createCoverageFleet({ seed: 3, honest: 24, cheaters: { spoofer: 1, ring: 3 } })
    const hotspots = coverageRegistry(fleet, 1)
    const records = await simulateCoverageEpoch({
      ...network,
      fleet,
      hotspots,
      epoch,
      epochStart,
      randomness,
      beaconShareBps: parameters.beaconShareBps,
      distanceResolution: parameters.distanceResolution,
      seed: 5,
    })
    const signed = await signCoverageRecords(fleet, records, network)
    expect(signed.length).toBe(records.beacons.length + records.witnesses.length)

    // the gateway's wire schema, then the sealed batch and its decoding
    const wire = JSON.parse(JSON.stringify(signed.map((r) => toRecordJson(r, connectivity.recordKinds))))
    const parsed = parseReadings(wire, connectivity.recordKinds)
    expect(parsed.invalid).toEqual(new Map())
    const sealed = encodeBatch(keccak, epoch, parsed.parsed.map((p) => p.reading).sort(compareReadings))
    const { readings } = decodeBatch(keccak, sealed.bytes, sealed.hash, connectivity.recordKinds)
    expect(readings.filter((r) => r.kind === 1).length).toBe(records.witnesses.length)

    const devices = new Map(
      [...hotspots].map(([address, h]) => [
        address,
        {
          device: h.device,
          owner: h.owner,
          deviceClass: h.deviceClass,
          h3Cell: h.cell,
          status: h.status,
          registeredAt: 0n,
        },
      ]),
    )
    const judged = judgeEpoch({
      blueprint,
      epoch,
      epochStart,
      epochEnd: epochStart + 30n,
      randomness,
      network,
      readings,
      devices,
      digest: await createReadingHasher(network.chainId, network.deviceRegistry, connectivity.recordKinds),
      keccak,
    })
    // the same on worker threads (a validator's path for big epochs), which hash every kind too
    const pool = createSignatureCheckPool({ ...network, kinds: connectivity.recordKinds, threads: 1 })
    try {
      await pool.ready
      const parallel = await judgeEpochInParallel(
        {
          blueprint,
          epoch,
          epochStart,
          epochEnd: epochStart + 30n,
          randomness,
          network,
          readings,
          devices,
          digest: await createReadingHasher(
            network.chainId,
            network.deviceRegistry,
            connectivity.recordKinds,
          ),
          keccak,
        },
        pool,
      )
      expect(parallel.judged.map((j) => j.verdict)).toEqual(judged.judged.map((j) => j.verdict))
      expect(parallel.readingsRoot).toBe(judged.readingsRoot)
    } finally {
      await pool.close()
    }
    // every record's signature verified (no pipeline rejection), and the rules' verdicts on it
    const direct = judgeCoverage({
      ...network,
      epoch,
      epochStart,
      epochEnd: epochStart + 30n,
      randomness,
      hotspots,
      radios,
      parameters,
      ...records,
      keccak,
    })
    const reasonOf = (j: (typeof judged.judged)[number]) =>
      j.verdict.type === 'accepted' ? null : j.verdict.reason
    const byKey = new Map(
      judged.judged.map((j) => [`${j.reading.device.toLowerCase()}:${j.reading.seq}`, reasonOf(j)]),
    )
    records.beacons.forEach((b, i) => {
      expect(byKey.get(`${b.device.toLowerCase()}:${b.seq}`)).toBe(direct.beaconVerdicts[i])
    })
    records.witnesses.forEach((w, i) => {
      expect(byKey.get(`${w.device.toLowerCase()}:${w.seq}`)).toBe(direct.witnessVerdicts[i])
    })
    expect(judged.rejectedByReason.SIGNATURE_INVALID).toBe(0)
    expect(judged.accepted).toBeGreaterThan(records.beacons.length)
    // each hotspot's weight is the rules' coverage weight, and its receipt shows the parts
    for (const score of judged.devices) {
      const units = direct.units.get(score.device.toLowerCase())
      expect(score.weight).toBe(units ? coverageWeight(units, parameters) : 0n)
    }
    const rewards = computeEpochRewards({
      blueprint,
      epoch,
      scores: judged.devices,
      previousSigners: [],
      previousCumulative: new Map(),
    })
    const { receipts } = epochReceipts({
      epoch,
      useCase: connectivity,
      scores: judged.devices,
      rewards,
      keccak,
    })
    const paid = receipts.filter((r) => r.reward > 0n)
    expect(paid.length).toBeGreaterThan(10)
    expect(connectivity.unitNames).toContain('beaconWitnesses')
  })

  it('refuses a Witness whose values do not fit its kind at the gateway, and a forged one at the judge', async () => {
    const fleet = createCoverageFleet({ seed: 4, honest: 3 })
    const hotspots = coverageRegistry(fleet, 1)
    const [signed] = await signCoverageRecords(
      fleet,
      {
        beacons: [],
        witnesses: [
          {
            device: fleet.hotspots[0]?.account.address as Address,
            seq: 1n,
            time: epochStart + 3n,
            beaconId: keccak256(toHex('no such beacon')),
            rssiCentiDbm: -10_000,
            snrCentiDb: 100,
            frequencyKhz: 868_100n,
          },
        ],
      },
      network,
    )
    const json = toRecordJson(signed as NonNullable<typeof signed>, connectivity.recordKinds)
    const parsed = parseReadings(
      [{ ...json, values: json.values.slice(0, 3) }, json],
      connectivity.recordKinds,
    )
    expect(parsed.invalid.get(0)).toMatch(/carries 4 values/)
    expect(parsed.parsed.map((p) => p.index)).toEqual([1])
    // the same record claimed by another hotspot: its signature is not that device's
    const forged = {
      ...(signed as NonNullable<typeof signed>),
      device: fleet.hotspots[1]?.account.address as Address,
    }
    const judged = judgeEpoch({
      blueprint,
      epoch,
      epochStart,
      epochEnd: epochStart + 30n,
      randomness,
      network,
      readings: [signed as NonNullable<typeof signed>, forged],
      devices: new Map(
        [...hotspots].map(([a, h]) => [
          a,
          { device: h.device, owner: h.owner, deviceClass: 1, h3Cell: h.cell, status: h.status },
        ]),
      ),
      digest: await createReadingHasher(network.chainId, network.deviceRegistry, connectivity.recordKinds),
      keccak,
    })
    const reasons = judged.judged
      .map((j) => (j.verdict.type === 'accepted' ? 'accepted' : j.verdict.reason))
      .sort()
    expect(reasons).toEqual(['SIGNATURE_INVALID', 'WITNESS_BEACON_UNKNOWN'])
  })
})
