/**
 * Connectivity judging: the proof-of-coverage rules (src/usecases/connectivity) over `count`
 * witness records of a synthetic city — 1,000 hotspots around Berlin, 300 chosen beaconers, each
 * beacon heard by count / 300 hotspots. Rules only: the records' own signatures are the shared
 * pipeline's, which the connectivity records do not pass through yet.
 */
import { latLngToCell } from 'h3-js'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { loadKeccak256 } from '../src/crypto/keccak.ts'
import { mulberry32 } from '../src/device/simulator/random.ts'
import { compareReadings } from '../src/gateway/batchFormat.ts'
import {
  type BeaconRecord,
  beaconIdOf,
  beaconMessage,
  type CoverageParameters,
  chooseBeaconers,
  type Hotspot,
  judgeCoverage,
  type WitnessRecord,
} from '../src/usecases/connectivity/coverageRules.ts'
import { SIMULATED_RADIO } from '../src/usecases/connectivity/simulateCoverage.ts'

export type BenchCoverageResult = { witnesses: number; seconds: number; perSecond: number; accepted: number }

const HOTSPOTS = 1_000
const BEACONERS = 300

export async function benchCoverage(count: number): Promise<BenchCoverageResult> {
  const keccak = await loadKeccak256()
  const random = mulberry32(42)
  const accounts = Array.from({ length: HOTSPOTS }, (_, i) =>
    privateKeyToAccount(keccak256(toHex(`bench hotspot ${i}`))),
  )
  const hotspots = new Map<string, Hotspot>(
    accounts.map((a) => [
      a.address.toLowerCase(),
      {
        device: a.address,
        owner: a.address,
        cell: BigInt(
          `0x${latLngToCell(52.52 + (random() - 0.5) * 0.1, 13.405 + (random() - 0.5) * 0.16, 12)}`,
        ),
        deviceClass: 1,
        status: 'active' as const,
        registeredAt: 0n,
      },
    ]),
  )
  const radios = new Map([[1, SIMULATED_RADIO]])
  const randomness = keccak256(toHex('bench randomness'))
  const chainId = 31337
  const deviceRegistry: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
  const epochStart = 1_764_201_600n
  const parameters: CoverageParameters = {
    beaconShareBps: (BEACONERS * 10_000) / HOTSPOTS,
    maxWitnessesPerBeacon: 14,
    witnessWindowSeconds: 1n,
    frequencyToleranceKhz: 100n,
    distanceResolution: 11,
    minDistanceM: 400n,
    maxDistanceM: 20_000n,
    rssiMarginCentiDb: 300,
    density: [{ resolution: 10, target: 1 }],
    impossibleReportLimit: 2,
    beaconerWeight: 1n,
    witnessWeight: 1n,
  }
  const chosen = chooseBeaconers(randomness, hotspots, radios, parameters.beaconShareBps, epochStart, 11)
  const byAddress = new Map(accounts.map((a) => [a.address, a]))
  const message = beaconMessage(chainId, deviceRegistry, 0n, randomness)
  const beacons: BeaconRecord[] = []
  const witnesses: WitnessRecord[] = []
  const perBeacon = Math.ceil(count / chosen.length)
  const seq = new Map<string, bigint>()
  for (const beaconer of chosen) {
    const payload = await (byAddress.get(beaconer) as (typeof accounts)[number]).sign({ hash: message })
    beacons.push({ device: beaconer, seq: 1n, time: epochStart + 5n, frequencyKhz: 868_100n, payload })
    const id: Hex = beaconIdOf(payload)
    for (let k = 0; k < perBeacon && witnesses.length < count; k++) {
      const witness = accounts[Math.floor(random() * HOTSPOTS)] as (typeof accounts)[number]
      const next = (seq.get(witness.address) ?? 1n) + 1n
      seq.set(witness.address, next)
      witnesses.push({
        device: witness.address,
        seq: next,
        time: epochStart + 5n,
        beaconId: id,
        rssiCentiDbm: -11_000,
        snrCentiDb: 500,
        frequencyKhz: 868_100n,
      })
    }
  }
  beacons.sort(compareReadings)
  witnesses.sort(compareReadings)
  const started = performance.now()
  const outcome = judgeCoverage({
    chainId,
    deviceRegistry,
    epoch: 0n,
    epochStart,
    epochEnd: epochStart + 3600n,
    randomness,
    hotspots,
    radios,
    parameters,
    beacons,
    witnesses,
    keccak,
  })
  const seconds = (performance.now() - started) / 1000
  return {
    witnesses: witnesses.length,
    seconds,
    perSecond: witnesses.length / seconds,
    accepted: outcome.witnessVerdicts.filter((v) => v === null).length,
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchCoverage(Number(process.argv[2] ?? 100_000)))
}
