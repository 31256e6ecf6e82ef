import { latLngToCell } from 'h3-js'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Keccak256, loadKeccak256 } from '../../crypto/keccak.ts'
import {
  type BeaconRecord,
  type CoverageOutcome,
  type CoverageParameters,
  chooseBeaconers,
  coverageWeight,
  type Hotspot,
  type HotspotUnits,
  judgeCoverage,
  type WitnessRecord,
} from './coverageRules.ts'
import {
  type CoverageFleet,
  coverageRegistry,
  createCoverageFleet,
  SIMULATED_RADIO,
  simulateCoverageEpoch,
} from './simulateCoverage.ts'

const CHAIN_ID = 31337
const DEVICE_REGISTRY: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const GENESIS = 1_764_201_600n
const EPOCH_LENGTH = 60n
const EPOCHS = 8n

const parameters: CoverageParameters = {
  beaconShareBps: 3000,
  maxWitnessesPerBeacon: 14,
  witnessWindowSeconds: 1n,
  frequencyToleranceKhz: 100n,
  distanceResolution: 11,
  minDistanceM: 400n,
  maxDistanceM: 20_000n,
  rssiMarginCentiDb: 300,
  density: [
    { resolution: 10, target: 1 },
    { resolution: 8, target: 4 },
  ],
  impossibleReportLimit: 2,
  beaconerWeight: 1n,
  witnessWeight: 1n,
}

const radios = new Map([[1, SIMULATED_RADIO]])
const randomnessOf = (epoch: bigint): Hex => keccak256(toHex(`randomness of epoch ${epoch}`))

type Run = {
  fleet: CoverageFleet
  weights: Map<string, bigint>
  reasons: Map<string, Map<string, number>>
  outcomes: { epoch: bigint; outcome: CoverageOutcome; beacons: BeaconRecord[]; witnesses: WitnessRecord[] }[]
}

let keccak: Keccak256
let run: Run

/** Eight epochs of a simulated city: weights and rejection reasons per hotspot name. */
async function simulate(): Promise<Run> {
  const fleet = createCoverageFleet({
    seed: 7,
    honest: 36,
    cheaters: { spoofer: 2, ring: 4, replayer: 1, relayer: 1 },
    flat: 10,
  })
  const hotspots = coverageRegistry(fleet, 1)
  const nameOf = new Map(fleet.hotspots.map((h) => [h.account.address.toLowerCase(), h.name]))
  const weights = new Map<string, bigint>()
  const reasons = new Map<string, Map<string, number>>()
  const count = (device: Address, reason: string | null) => {
    if (!reason) return
    const name = nameOf.get(device.toLowerCase()) as string
    const byReason = reasons.get(name) ?? new Map<string, number>()
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1)
    reasons.set(name, byReason)
  }
  const outcomes: Run['outcomes'] = []
  let previous: { beacons: BeaconRecord[]; witnesses: WitnessRecord[] } | undefined
  for (let epoch = 0n; epoch < EPOCHS; epoch++) {
    const epochStart = GENESIS + epoch * EPOCH_LENGTH
    const common = {
      chainId: CHAIN_ID,
      deviceRegistry: DEVICE_REGISTRY,
      epoch,
      epochStart,
      randomness: randomnessOf(epoch),
    }
    const records = await simulateCoverageEpoch({
      ...common,
      fleet,
      hotspots,
      beaconShareBps: parameters.beaconShareBps,
      distanceResolution: parameters.distanceResolution,
      seed: 11,
      ...(previous ? { replay: previous } : {}),
    })
    const outcome = judgeCoverage({
      ...common,
      epochEnd: epochStart + EPOCH_LENGTH,
      hotspots,
      radios,
      parameters,
      ...records,
      keccak,
    })
    records.beacons.forEach((b, i) => {
      count(b.device, outcome.beaconVerdicts[i] ?? null)
    })
    records.witnesses.forEach((w, i) => {
      count(w.device, outcome.witnessVerdicts[i] ?? null)
    })
    for (const [device, units] of outcome.units) {
      const name = nameOf.get(device) as string
      weights.set(name, (weights.get(name) ?? 0n) + coverageWeight(units, parameters))
    }
    outcomes.push({ epoch, outcome, ...records })
    previous = records
  }
  return { fleet, weights, reasons, outcomes }
}

beforeAll(async () => {
  keccak = await loadKeccak256()
  run = await simulate()
  if (process.env.COVERAGE_REPORT) {
    for (const h of run.fleet.hotspots)
      console.log(h.name.padEnd(18), String(weightOf(h.name)).padStart(8), JSON.stringify(reasonsOf(h.name)))
  }
}, 60_000)

const weightOf = (name: string) => run.weights.get(name) ?? 0n
const reasonsOf = (name: string) => Object.fromEntries(run.reasons.get(name) ?? [])

describe('proof of coverage on a simulated city', () => {
  it('pays honest hotspots: most of them earn, from beacons witnessed and witnesses made', () => {
    const honest = run.fleet.hotspots.filter((h) => h.name.startsWith('honest '))
    const earning = honest.filter((h) => weightOf(h.name) > 0n)
    expect(earning.length).toBeGreaterThan(honest.length * 0.8)
    const witnessed = run.outcomes.flatMap((o) => o.outcome.witnessVerdicts).filter((v) => v === null).length
    expect(witnessed).toBeGreaterThan(100)
  })

  it('pays each cheater less than an honest hotspot in the same place, with the reasons in its verdicts', () => {
    for (const [cheater, control] of run.fleet.controlOf) {
      expect(weightOf(cheater), `${cheater} vs ${control}`).toBeLessThan(weightOf(control))
    }
    // a spoofer asserting a town 32 km away: its witnesses are too far from the beacons it hears
    expect(reasonsOf('spoofer 0').WITNESS_TOO_FAR).toBeGreaterThan(0)
    // a ring in one room asserting cells 1.5 km apart: each other's signals are far too strong
    expect(reasonsOf('ring 1').WITNESS_RSSI_TOO_STRONG).toBeGreaterThan(0)
    // a replayer: old beacons are not this epoch's, old witnesses quote beacons that never were
    const replayer = reasonsOf('replayer 0')
    expect((replayer.BEACON_NOT_CHOSEN ?? 0) + (replayer.BEACON_PAYLOAD_INVALID ?? 0)).toBeGreaterThan(0)
    expect(replayer.WITNESS_BEACON_UNKNOWN).toBeGreaterThan(0)
    expect(weightOf('replayer 0')).toBe(0n)
    // a relayer 15 km out: late, and with an accomplice's RSSI no radio hears across that distance
    expect(
      (reasonsOf('relayer 0').WITNESS_LATE ?? 0) + (reasonsOf('relayer 0').WITNESS_RSSI_TOO_STRONG ?? 0),
    ).toBeGreaterThan(0)
    expect(weightOf('relayer 0')).toBe(0n)
  })

  it('picks the beaconers from the randomness alone, as anyone recomputes them', () => {
    const hotspots = coverageRegistry(run.fleet, 1)
    for (const { epoch, outcome } of run.outcomes) {
      // recomputed without the module: sort by keccak256(randomness ‖ address), take 30 %
      const ranked = [...hotspots.values()]
        .map((h) => ({
          device: h.device,
          rank: keccak256(`${randomnessOf(epoch)}${h.device.slice(2).toLowerCase()}` as Hex),
        }))
        .sort((a, b) => (a.rank < b.rank ? -1 : 1))
      const expected = ranked.slice(0, Math.floor((hotspots.size * 3000) / 10_000)).map((r) => r.device)
      expect(outcome.beaconers).toEqual(expected)
      const start = GENESIS + epoch * EPOCH_LENGTH
      expect(chooseBeaconers(randomnessOf(epoch), hotspots, radios, 3000, start, 11)).toEqual(expected)
    }
    expect(new Set(run.outcomes.map((o) => o.outcome.beaconers.join())).size).toBe(Number(EPOCHS))
  })

  it("pays a crowded cell no more than its target's worth: ten hotspots in one flat share one hotspot's", () => {
    for (const { outcome } of run.outcomes) {
      const flat = run.fleet.flat
        .map(
          (name) => run.fleet.hotspots.find((h) => h.name === name)?.account.address.toLowerCase() as string,
        )
        .map((device) => outcome.units.get(device))
        .filter((u): u is HotspotUnits => u !== undefined)
      if (flat.length < 2) continue
      for (const u of flat) expect(u.densityBps).toBeLessThanOrEqual(Math.floor(10_000 / flat.length))
      if (flat.some((u) => u.impossibleReports >= parameters.impossibleReportLimit)) continue
      const paid = flat.reduce((sum, u) => sum + coverageWeight(u, parameters), 0n)
      const unscaled = flat.map((u) => coverageWeight({ ...u, densityBps: 10_000 }, parameters))
      let most = 0n
      for (const w of unscaled) if (w > most) most = w
      expect(paid).toBeLessThanOrEqual(most)
    }
    expect(run.fleet.flat.some((name) => weightOf(name) > 0n)).toBe(true)
  })

  it("rewards at most maxWitnessesPerBeacon of a beacon's valid witnesses, picked by the randomness", () => {
    let checked = 0
    for (const { epoch, outcome, beacons, witnesses } of run.outcomes) {
      for (const c of outcome.coverage) {
        const beacon = beacons.find(
          (b) => b.device.toLowerCase() === c.beaconer.toLowerCase(),
        ) as BeaconRecord
        // recomputed: the beacon's valid witnesses ranked by keccak256(randomness ‖ beaconer ‖ witness)
        const ofBeacon = witnesses
          .map((w, i) => ({ w, verdict: outcome.witnessVerdicts[i] }))
          .filter(
            ({ w, verdict }) =>
              w.beaconId === keccak256(beacon.payload) &&
              (verdict === null || verdict === 'WITNESS_NOT_SELECTED'),
          )
        const ranked = ofBeacon
          .map(({ w }) => ({
            w,
            rank: keccak256(`${randomnessOf(epoch)}${c.beaconer.slice(2)}${w.device.slice(2)}` as Hex),
          }))
          .sort((a, b) => (a.rank < b.rank ? -1 : 1))
        const rewarded = ranked.slice(0, parameters.maxWitnessesPerBeacon).map(({ w }) => w.device)
        const actual = ofBeacon.filter(({ verdict }) => verdict === null).map(({ w }) => w.device)
        expect(new Set(actual)).toEqual(new Set(rewarded))
        expect(c.witnesses).toBe(rewarded.length)
        if (ofBeacon.length > parameters.maxWitnessesPerBeacon) checked++
      }
    }
    expect(checked).toBeGreaterThan(0) // some beacons had more valid witnesses than are rewarded
  })

  it('cannot be made to cut an honest beaconer: framers reporting its beacon impossibly strong only lose themselves', () => {
    const { epoch, beacons, witnesses } = run.outcomes[3] as Run['outcomes'][number]
    const hotspots = coverageRegistry(run.fleet, 1)
    // two registered hotspots 10 km out quote every beacon with a 20 dBm RSSI
    const framers = ['framer a', 'framer b'].map((name) => privateKeyToAccount(keccak256(toHex(name))))
    framers.forEach((f, i) => {
      hotspots.set(f.address.toLowerCase(), {
        device: f.address,
        owner: f.address,
        cell: BigInt(`0x${latLngToCell(52.6, 13.25 + i * 0.01, 12)}`),
        deviceClass: 1,
        status: 'active',
        registeredAt: 0n,
      })
    })
    const forged = framers.flatMap((f) =>
      beacons.map((b, k) => ({
        device: f.address,
        seq: BigInt(k + 1),
        time: b.time,
        beaconId: keccak256(b.payload),
        rssiCentiDbm: 2000,
        snrCentiDb: 1000,
        frequencyKhz: b.frequencyKhz,
      })),
    )
    const start = GENESIS + epoch * EPOCH_LENGTH
    const judge = (all: WitnessRecord[]) =>
      judgeCoverage({
        chainId: CHAIN_ID,
        deviceRegistry: DEVICE_REGISTRY,
        epoch,
        epochStart: start,
        epochEnd: start + EPOCH_LENGTH,
        randomness: randomnessOf(epoch),
        hotspots,
        radios,
        parameters,
        beacons,
        witnesses: all,
        keccak,
      })
    // the framers registered, once without their made-up witnesses, once with them
    const honest = judge(witnesses)
    const judged = judge([...witnesses, ...forged])
    expect(forged.length).toBeGreaterThan(10)
    expect(honest.units.size).toBeGreaterThan(10)
    for (const [device, units] of honest.units) {
      const after = judged.units.get(device) as HotspotUnits
      expect(after, device).toEqual({ ...units, densityBps: after.densityBps })
      expect(coverageWeight(after, parameters), device).toBe(
        coverageWeight({ ...units, densityBps: after.densityBps }, parameters),
      )
    }
    for (const f of framers) {
      const units = judged.units.get(f.address.toLowerCase())
      expect(units === undefined || coverageWeight(units, parameters) === 0n).toBe(true)
    }
    const verdicts = judged.witnessVerdicts.slice(witnesses.length)
    expect(verdicts.filter((v) => v === null)).toEqual([])
    expect(verdicts).toContain('WITNESS_RSSI_TOO_STRONG')
  })

  it('never lets a key registered after the epoch started beacon in it (no grinding the randomness)', () => {
    const epoch = 2n
    const start = GENESIS + epoch * EPOCH_LENGTH
    const hotspots = coverageRegistry(run.fleet, 1)
    // the best-ranked hotspot of the epoch, as if it had been ground and registered mid-epoch
    const first = chooseBeaconers(randomnessOf(epoch), hotspots, radios, 3000, start, 11)[0] as Address
    const late = hotspots.get(first.toLowerCase()) as Hotspot
    hotspots.set(first.toLowerCase(), { ...late, registeredAt: start + 1n })
    expect(chooseBeaconers(randomnessOf(epoch), hotspots, radios, 3000, start, 11)).not.toContain(first)
  })

  it('takes a hotspot with a hostile cell out of the epoch instead of failing it', () => {
    const { epoch, beacons, witnesses } = run.outcomes[1] as Run['outcomes'][number]
    const hotspots = coverageRegistry(run.fleet, 1)
    const witness = (witnesses[0] as WitnessRecord).device.toLowerCase()
    const beaconer = (beacons[0] as BeaconRecord).device.toLowerCase()
    hotspots.set(witness, { ...(hotspots.get(witness) as Hotspot), cell: 0n })
    // a cell coarser than the distance resolution
    hotspots.set(beaconer, {
      ...(hotspots.get(beaconer) as Hotspot),
      cell: BigInt(`0x${latLngToCell(52.5, 13.4, 5)}`),
    })
    const start = GENESIS + epoch * EPOCH_LENGTH
    const judged = judgeCoverage({
      chainId: CHAIN_ID,
      deviceRegistry: DEVICE_REGISTRY,
      epoch,
      epochStart: start,
      epochEnd: start + EPOCH_LENGTH,
      randomness: randomnessOf(epoch),
      hotspots,
      radios,
      parameters,
      beacons,
      witnesses,
      keccak,
    })
    expect(judged.witnessVerdicts[0]).toBe('HOTSPOT_CELL_INVALID')
    expect(judged.beaconVerdicts[0]).toBe('HOTSPOT_CELL_INVALID')
  })

  it('is the same on every run', async () => {
    const again = await simulate()
    expect(again.outcomes.map((o) => o.outcome)).toEqual(run.outcomes.map((o) => o.outcome))
  })
})
