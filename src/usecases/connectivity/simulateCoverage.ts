/**
 * A simulated connectivity network: LoRa-like hotspots in Berlin, a dual-slope log-distance
 * propagation model (free space to 100 m, then exponent 4, 20 dB indoors) with 6 dB log-normal
 * shadowing deciding who hears whom, and cheaters of four kinds:
 * - `spoofer`: stands among honest hotspots, asserts a cell far away (to claim coverage there);
 * - `ring`: hotspots in one room asserting spread-out cells, witnessing each other;
 * - `replayer`: sends an earlier epoch's beacon and witnesses again, and nothing live;
 * - `relayer`: far from the city, witnesses the city's beacons from copies relayed over the
 *   internet, with the RSSI a close accomplice heard, a little late.
 * The physics here is floating point (it is the world, not the rules); what it produces are the
 * signed beacons and witness records the rules judge.
 */

import { latLngToCell } from 'h3-js'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { compareReadings } from '../../gateway/batchFormat.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { signRecord } from '../../readings/signReading.ts'
import { mulberry32 } from '../simulatorRandom.ts'
import {
  type BeaconRecord,
  beaconIdOf,
  beaconMessage,
  chooseBeaconers,
  type Hotspot,
  type Radio,
  type WitnessRecord,
} from './coverageRules.ts'
import { BEACON_KIND, beaconValues, WITNESS_KIND } from './index.ts'

export type HotspotKind = 'honest' | 'spoofer' | 'ring' | 'replayer' | 'relayer'

export type SimulatedHotspot = {
  name: string
  kind: HotspotKind
  account: PrivateKeyAccount
  /** Where it really is. */
  position: readonly [number, number]
  /** Where it says it is (its registered cell, resolution 12). */
  asserted: readonly [number, number]
  cell: bigint
}

/** Radio of the simulated hotspot model: 27 dBm, 3 dBi, 868.1 MHz. */
export const SIMULATED_RADIO: Radio = {
  txPowerCentiDbm: 2700,
  antennaGainCentiDbi: 300,
  frequencyKhz: 868_100n,
}

const BERLIN: readonly [number, number] = [52.52, 13.405]
/** Metres to degrees near Berlin. */
const M_PER_DEG_LAT = 111_320
const M_PER_DEG_LNG = 111_320 * Math.cos((BERLIN[0] * Math.PI) / 180)
const offset = (from: readonly [number, number], northM: number, eastM: number): [number, number] => [
  from[0] + northM / M_PER_DEG_LAT,
  from[1] + eastM / M_PER_DEG_LNG,
]
const metres = (a: readonly [number, number], b: readonly [number, number]) =>
  Math.hypot((a[0] - b[0]) * M_PER_DEG_LAT, (a[1] - b[1]) * M_PER_DEG_LNG)

export type CoverageFleetParameters = {
  seed: number
  /** Honest hotspots spread over the city (about 8 km across). */
  honest: number
  /** Cheaters of each kind (a ring counts its members). */
  cheaters?: Partial<Record<Exclude<HotspotKind, 'honest'>, number>>
  /** Hotspots crammed into one flat (honest, each asserting its true place). */
  flat?: number
}

export type CoverageFleet = {
  hotspots: SimulatedHotspot[]
  /** For each cheater, an honest hotspot placed right next to it (same place, honest assertion). */
  controlOf: Map<string, string>
  /** The hotspots in the flat, by name. */
  flat: string[]
}

/** Creates the fleet: positions, assertions and keys, all from the seed. */
export function createCoverageFleet(parameters: CoverageFleetParameters): CoverageFleet {
  const random = mulberry32(parameters.seed)
  const hotspots: SimulatedHotspot[] = []
  const add = (name: string, kind: HotspotKind, position: [number, number], asserted = position) => {
    const account = privateKeyToAccount(keccak256(toHex(`coverage ${parameters.seed} ${name}`)))
    hotspots.push({
      name,
      kind,
      account,
      position,
      asserted,
      cell: BigInt(`0x${latLngToCell(asserted[0], asserted[1], 12)}`),
    })
  }
  const somewhere = (): [number, number] => offset(BERLIN, (random() - 0.5) * 8000, (random() - 0.5) * 8000)
  for (let i = 0; i < parameters.honest; i++) add(`honest ${i}`, 'honest', somewhere())
  const controlOf = new Map<string, string>()
  const withControl = (name: string, kind: HotspotKind, position: [number, number], asserted = position) => {
    add(name, kind, position, asserted)
    add(`${name} control`, 'honest', offset(position, 40, 40))
    controlOf.set(name, `${name} control`)
  }
  const cheaters = parameters.cheaters ?? {}
  for (let i = 0; i < (cheaters.spoofer ?? 0); i++) {
    const here = somewhere()
    withControl(`spoofer ${i}`, 'spoofer', here, offset(here, 30_000, -12_000)) // claims a town 32 km away
  }
  if ((cheaters.ring ?? 0) > 0) {
    const room = somewhere()
    for (let i = 0; i < (cheaters.ring as number); i++) {
      const angle = (2 * Math.PI * i) / (cheaters.ring as number)
      // all in one room, asserting cells 1.5 km apart around it
      const asserted = offset(room, 1500 * Math.sin(angle), 1500 * Math.cos(angle))
      const position = offset(room, 2 * Math.sin(angle), 2 * Math.cos(angle))
      add(`ring ${i}`, 'ring', position, asserted)
      controlOf.set(`ring ${i}`, 'ring control')
    }
    // an honest hotspot in the ring's neighbourhood, not in its room: hotspots in one room that
    // assert cells apart cannot be told apart from a truthful one among them by physics alone
    add('ring control', 'honest', offset(room, 600, 500))
  }
  for (let i = 0; i < (cheaters.replayer ?? 0); i++) withControl(`replayer ${i}`, 'replayer', somewhere())
  if ((cheaters.relayer ?? 0) > 0) {
    // a small town 15 km out, beyond radio range of the city: a couple of honest hotspots and the relayer
    const town = offset(BERLIN, -15_000, 0)
    add('town 0', 'honest', offset(town, 400, -300))
    add('town 1', 'honest', offset(town, -350, 250))
    for (let i = 0; i < (cheaters.relayer as number); i++)
      withControl(`relayer ${i}`, 'relayer', offset(town, 0, 200 * i))
  }
  const flat: string[] = []
  if ((parameters.flat ?? 0) > 0) {
    const place = somewhere()
    for (let i = 0; i < (parameters.flat as number); i++) {
      add(`flat ${i}`, 'honest', offset(place, i * 0.5, 0))
      flat.push(`flat ${i}`)
    }
  }
  return { hotspots, controlOf, flat }
}

/** Registry records of the fleet (owners derived from the names). */
export function coverageRegistry(fleet: CoverageFleet, deviceClass: number): Map<string, Hotspot> {
  return new Map(
    fleet.hotspots.map((h) => [
      h.account.address.toLowerCase(),
      {
        device: h.account.address,
        owner: privateKeyToAccount(keccak256(toHex(`owner of ${h.name}`))).address,
        cell: h.cell,
        deviceClass,
        status: 'active' as const,
        registeredAt: 0n,
      },
    ]),
  )
}

/**
 * Path loss (dB) of the simulated city: free space to 100 m, then exponent 4 (streets and
 * buildings), plus 20 dB for hotspots indoors: about 4 to 5 km of range.
 */
function pathLossDb(distanceM: number, frequencyKhz: bigint): number {
  const fsplAt = (d: number) =>
    20 * Math.log10(Math.max(d, 1)) + 20 * Math.log10(Number(frequencyKhz) * 1000) - 147.55
  if (distanceM <= 100) return fsplAt(distanceM)
  return fsplAt(100) + 40 * Math.log10(distanceM / 100) + 20
}

/** A LoRa receiver's sensitivity (SF7, 125 kHz). */
const SENSITIVITY_DBM = -125

export type SimulateCoverageEpochParameters = {
  fleet: CoverageFleet
  hotspots: ReadonlyMap<string, Hotspot>
  chainId: number
  deviceRegistry: Address
  epoch: bigint
  epochStart: bigint
  randomness: Hex
  beaconShareBps: number
  distanceResolution: number
  /** Beacons go out over this many seconds from 2 s after the epoch's start (default 20). */
  spreadSeconds?: number
  /** What the replayers send again: an earlier epoch's simulated records. */
  replay?: { beacons: BeaconRecord[]; witnesses: WitnessRecord[] }
  seed: number
}

/** One epoch of the simulated network: the chosen beaconers beacon, and whoever hears one witnesses it. */
export async function simulateCoverageEpoch(
  parameters: SimulateCoverageEpochParameters,
): Promise<{ beacons: BeaconRecord[]; witnesses: WitnessRecord[] }> {
  const { fleet, epochStart } = parameters
  const random = mulberry32(parameters.seed ^ Number(parameters.epoch & 0xffffn))
  const gaussian = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random())
  const radios = new Map([[1, SIMULATED_RADIO]])
  const chosen = chooseBeaconers(
    parameters.randomness,
    parameters.hotspots,
    radios,
    parameters.beaconShareBps,
    epochStart,
    parameters.distanceResolution,
  )
  const byAddress = new Map(fleet.hotspots.map((h) => [h.account.address.toLowerCase(), h]))
  const message = beaconMessage(
    parameters.chainId,
    parameters.deviceRegistry,
    parameters.epoch,
    parameters.randomness,
  )
  const beacons: BeaconRecord[] = []
  const witnesses: WitnessRecord[] = []
  const seq = new Map<string, bigint>()
  const next = (h: SimulatedHotspot) => {
    const n = (seq.get(h.name) ?? BigInt(parameters.epoch) * 1000n) + 1n
    seq.set(h.name, n)
    return n
  }
  const radio = SIMULATED_RADIO
  for (const [k, address] of chosen.entries()) {
    const beaconer = byAddress.get(address.toLowerCase()) as SimulatedHotspot
    if (beaconer.kind === 'replayer' || beaconer.kind === 'relayer') continue // no live radio
    const payload = await beaconer.account.sign({ hash: message })
    const time = epochStart + 2n + BigInt(k % (parameters.spreadSeconds ?? 20))
    beacons.push({
      device: beaconer.account.address,
      seq: next(beaconer),
      time,
      frequencyKhz: radio.frequencyKhz,
      payload,
    })
    const id = beaconIdOf(payload)
    let loudest = -Infinity
    for (const listener of fleet.hotspots) {
      if (listener === beaconer || listener.kind === 'replayer' || listener.kind === 'relayer') continue
      const rssi =
        radio.txPowerCentiDbm / 100 +
        (2 * radio.antennaGainCentiDbi) / 100 -
        pathLossDb(metres(beaconer.position, listener.position), radio.frequencyKhz) +
        6 * gaussian()
      if (rssi < SENSITIVITY_DBM) continue
      loudest = Math.max(loudest, rssi)
      witnesses.push({
        device: listener.account.address,
        seq: next(listener),
        time: time + BigInt(Math.floor(random() * 1.5)),
        beaconId: id,
        rssiCentiDbm: Math.round(rssi * 100),
        snrCentiDb: Math.round((rssi - SENSITIVITY_DBM - 10) * 100),
        frequencyKhz: radio.frequencyKhz,
      })
    }
    // relayers get the beacon from a close accomplice over the internet, with the accomplice's RSSI, late
    if (loudest > -Infinity) {
      for (const relayer of fleet.hotspots.filter((h) => h.kind === 'relayer')) {
        witnesses.push({
          device: relayer.account.address,
          seq: next(relayer),
          time: time + 2n + BigInt(Math.floor(random() * 3)),
          beaconId: id,
          rssiCentiDbm: Math.round(loudest * 100),
          snrCentiDb: 800,
          frequencyKhz: radio.frequencyKhz,
        })
      }
    }
  }
  // replayers send an earlier epoch's records again (as theirs), with new sequence numbers and times
  for (const replayer of fleet.hotspots.filter((h) => h.kind === 'replayer')) {
    for (const old of parameters.replay?.beacons ?? []) {
      beacons.push({ ...old, device: replayer.account.address, seq: next(replayer), time: epochStart + 3n })
    }
    for (const old of parameters.replay?.witnesses.slice(0, 10) ?? []) {
      witnesses.push({ ...old, device: replayer.account.address, seq: next(replayer), time: epochStart + 4n })
    }
  }
  return { beacons: beacons.sort(compareReadings), witnesses: witnesses.sort(compareReadings) }
}

/**
 * The epoch's records as the hotspots send them through the shared pipeline: each beacon and
 * witness a signed record of its kind (Beacon, Witness), by the hotspot's key.
 */
export async function signCoverageRecords(
  fleet: CoverageFleet,
  records: { beacons: BeaconRecord[]; witnesses: WitnessRecord[] },
  network: { chainId: number; deviceRegistry: Address },
): Promise<SignedReading[]> {
  const byAddress = new Map(fleet.hotspots.map((h) => [h.account.address.toLowerCase(), h.account]))
  const kinds = [BEACON_KIND, WITNESS_KIND]
  const sign = (device: Address, seq: bigint, time: bigint, kind: number, values: bigint[]) =>
    signRecord({
      account: byAddress.get(device.toLowerCase()) as PrivateKeyAccount,
      ...network,
      kinds,
      kind,
      seq,
      time,
      values,
    })
  const signed: SignedReading[] = []
  for (const b of records.beacons)
    signed.push(await sign(b.device, b.seq, b.time, 0, beaconValues(b.payload, b.frequencyKhz)))
  for (const w of records.witnesses)
    signed.push(
      await sign(w.device, w.seq, w.time, 1, [
        BigInt(w.beaconId),
        BigInt(w.rssiCentiDbm),
        BigInt(w.snrCentiDb),
        w.frequencyKhz,
      ]),
    )
  return signed
}
