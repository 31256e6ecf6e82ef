/**
 * Proof of coverage, the connectivity use case's rules: a pure, deterministic function of an
 * epoch's beacons and witness records, the registry as of the epoch's end and the epoch's
 * randomness; integers only. Modelled on Helium's iot_verifier (poc.rs, hex_density.rs), with
 * every outcome a stable reason code:
 *
 * 1. The randomness picks the epoch's beaconers among the radio hotspots registered before the
 *    epoch started (sorted by keccak256(randomness ‖ address), the first beaconShareBps of them),
 *    so anyone recomputes who had to beacon, and a key ground after the randomness was known and
 *    registered mid-epoch is never one of them.
 * 2. A beacon's payload is the beaconer's signature of the epoch's beacon message (the
 *    randomness, the epoch, the chain): nobody can make it before the epoch, nor for another key.
 *    Its id, keccak256(payload), is what witnesses quote.
 * 3. A witness must quote an accepted beacon of this epoch, heard within the window after it, on
 *    its frequency, not by the beaconer itself, once, from an asserted cell between the minimum
 *    and maximum distance, with an RSSI no stronger than free-space path loss allows over that
 *    distance (plus a margin).
 * 4. Of a beacon's valid witnesses the randomness picks at most maxWitnessesPerBeacon to reward,
 *    ranked by keccak256(randomness ‖ beaconer ‖ witness) — not by the payload, which a beaconer
 *    could re-sign until its accomplices rank first.
 * 5. Density (HIP-17's idea): per configured resolution, hotspots active in one cell beyond its
 *    target share the cell's worth — each one's weight is scaled by target / count.
 * 6. Impossible reports: a witness heard stronger than free space allows over the asserted
 *    distance proves that the beaconer or the witness is not where it says. Physics cannot tell
 *    which, and blaming the beaconer would let anyone frame honest beaconers with made-up strong
 *    witnesses, so only the reporter pays: a hotspot that reports impossibleReportLimit or more
 *    beacons impossibly in an epoch earns nothing for it. A ring of hotspots in one room that
 *    assert cells apart reports its own beacons so; a truthful hotspot pays only when it sits
 *    among such liars (in the same room, which physics cannot tell from them).
 * A hotspot whose asserted cell is not a valid H3 cell at or below the distance resolution takes
 * part in nothing (HOTSPOT_CELL_INVALID): hostile registry data never stops an epoch.
 */
import { cellToParent as cellToParentHex, getResolution, isValidCell } from 'h3-js'
import { type Address, concat, encodeAbiParameters, type Hex, hexToBytes, keccak256 } from 'viem'
import type { Keccak256 } from '../../crypto/keccak.ts'
import { recoverSigner } from '../../readings/recoverReadingSigner.ts'
import { createCellDistance } from './cellDistance.ts'
import { maxRssiCenti } from './pathLoss.ts'

export const BEACON_REJECT_REASONS = [
  'HOTSPOT_NOT_RADIO',
  'HOTSPOT_CELL_INVALID',
  'BEACON_OUTSIDE_EPOCH',
  'BEACON_NOT_CHOSEN',
  'BEACON_PAYLOAD_INVALID',
  'BEACON_FREQUENCY',
  'BEACON_DUPLICATE',
] as const

export const WITNESS_REJECT_REASONS = [
  'HOTSPOT_NOT_RADIO',
  'HOTSPOT_CELL_INVALID',
  'WITNESS_OUTSIDE_EPOCH',
  'WITNESS_BEACON_UNKNOWN',
  'WITNESS_SELF',
  'WITNESS_DUPLICATE',
  'WITNESS_LATE',
  'WITNESS_FREQUENCY',
  'WITNESS_TOO_CLOSE',
  'WITNESS_TOO_FAR',
  'WITNESS_RSSI_TOO_STRONG',
  'WITNESS_NOT_SELECTED',
] as const

export type BeaconRejectReason = (typeof BEACON_REJECT_REASONS)[number]
export type WitnessRejectReason = (typeof WITNESS_REJECT_REASONS)[number]

/** A registered hotspot as the registry holds it at the epoch's end. */
export type Hotspot = {
  device: Address
  owner: Address
  /** Its asserted location: an H3 cell at or below the distance resolution. */
  cell: bigint
  deviceClass: number
  status: 'active' | 'retired'
  /** Time of the block it was registered in: only hotspots registered before an epoch beacon in it. */
  registeredAt: bigint
}

/** A hotspot model's radio, from its device class. */
export type Radio = { txPowerCentiDbm: number; antennaGainCentiDbi: number; frequencyKhz: bigint }

export type CoverageParameters = {
  /** Share of the radio hotspots chosen to beacon each epoch (at least one). */
  beaconShareBps: number
  /** Witnesses rewarded per beacon, at most. */
  maxWitnessesPerBeacon: number
  /** A witness must be heard at most this long after the beacon. */
  witnessWindowSeconds: bigint
  frequencyToleranceKhz: bigint
  /** H3 resolution distances are measured at. */
  distanceResolution: number
  minDistanceM: bigint
  maxDistanceM: bigint
  /** How much stronger than free space a witness may report (fading, calibration). */
  rssiMarginCentiDb: number
  /** Per resolution, the hotspots a cell is worth; more share it. */
  density: readonly { resolution: number; target: number }[]
  /** Beacons a hotspot reports with an impossible RSSI in an epoch that make it earn nothing for it. */
  impossibleReportLimit: number
  /** Weight per rewarded witness of a hotspot's own beacon, and per rewarded witness it made. */
  beaconerWeight: bigint
  witnessWeight: bigint
}

/** A hotspot's beacon: it was chosen, and sent `payload` on `frequencyKhz` at `time`. */
export type BeaconRecord = { device: Address; seq: bigint; time: bigint; frequencyKhz: bigint; payload: Hex }

/** A hotspot's report of a beacon it heard. */
export type WitnessRecord = {
  device: Address
  seq: bigint
  time: bigint
  /** keccak256 of the beacon's payload. */
  beaconId: Hex
  rssiCentiDbm: number
  snrCentiDb: number
  frequencyKhz: bigint
}

export type CoverageInput = {
  chainId: number
  deviceRegistry: Address
  epoch: bigint
  /** The epoch's window in unix seconds, [epochStart, epochEnd). */
  epochStart: bigint
  epochEnd: bigint
  randomness: Hex
  /** Registry state at the epoch's end, by lower-case address. */
  hotspots: ReadonlyMap<string, Hotspot>
  radios: ReadonlyMap<number, Radio>
  parameters: CoverageParameters
  /** Each in canonical order (device lower-case hex, then seq), duplicates of (device, seq) removed. */
  beacons: readonly BeaconRecord[]
  witnesses: readonly WitnessRecord[]
  keccak: Keccak256
}

/** A hotspot's work in the epoch. */
export type HotspotUnits = {
  /** Its accepted beacons (0 or 1). */
  beacons: number
  /** Rewarded witnesses of its beacon. */
  beaconWitnesses: number
  /** Its own rewarded witness records. */
  witnesses: number
  /** Density scale, basis points (10,000 = not crowded). */
  densityBps: number
  /** Beacons it reported heard stronger than physically possible (WITNESS_RSSI_TOO_STRONG). */
  impossibleReports: number
}

export type CoverageOutcome = {
  /** The hotspots that had to beacon, in the randomness's order. */
  beaconers: Address[]
  /** Per beacon / witness (input order): null when accepted, else why not. */
  beaconVerdicts: (BeaconRejectReason | null)[]
  witnessVerdicts: (WitnessRejectReason | null)[]
  /** Per hotspot with an accepted beacon or a valid witness, by lower-case address. */
  units: Map<string, HotspotUnits>
  /** Cells (at the distance resolution) whose beacon at least one rewarded witness heard. */
  coverage: { cell: bigint; beaconer: Address; witnesses: number }[]
}

/** The digest a chosen beaconer signs to make its beacon's payload. */
export function beaconMessage(chainId: number, deviceRegistry: Address, epoch: bigint, randomness: Hex): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'string' }, { type: 'uint256' }, { type: 'address' }, { type: 'uint64' }, { type: 'bytes32' }],
      ['depin.beacon', BigInt(chainId), deviceRegistry, epoch, randomness],
    ),
  )
}

/** The id witnesses quote: keccak256 of the payload. */
export const beaconIdOf = (payload: Hex): Hex => keccak256(payload)

/** The randomness's order of a set of keys: ascending keccak256(randomness ‖ key). */
const ranked = (randomness: Hex, key: Hex): Hex => keccak256(concat([randomness, key]))

/**
 * The epoch's beaconers: the first beaconShareBps of the active radio hotspots registered before
 * `epochStart` (with a usable cell), in the randomness's order.
 */
export function chooseBeaconers(
  randomness: Hex,
  hotspots: ReadonlyMap<string, Hotspot>,
  radios: ReadonlyMap<number, Radio>,
  beaconShareBps: number,
  epochStart: bigint,
  distanceResolution: number,
): Address[] {
  const eligible = [...hotspots.values()]
    .filter(
      (h) =>
        h.status === 'active' &&
        radios.has(h.deviceClass) &&
        h.registeredAt < epochStart &&
        usableCell(h.cell, distanceResolution),
    )
    .map((h) => ({ device: h.device, rank: ranked(randomness, h.device.toLowerCase() as Hex) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
  if (eligible.length === 0) return []
  const count = Math.max(1, Math.floor((eligible.length * beaconShareBps) / 10_000))
  return eligible.slice(0, count).map((e) => e.device)
}

const absolute = (x: bigint) => (x < 0n ? -x : x)

/** Whether a registry cell is a valid H3 cell at or below `resolution` (finer or equal). */
export function usableCell(cell: bigint, resolution: number): boolean {
  if (cell <= 0n || cell >= 1n << 64n) return false
  const hex = cell.toString(16)
  return isValidCell(hex) && getResolution(hex) >= resolution
}

/** Judges an epoch's beacons and witnesses (see the module's comment). */
export function judgeCoverage(input: CoverageInput): CoverageOutcome {
  const { parameters: p, hotspots, radios, randomness } = input
  const inEpoch = (time: bigint) => time >= input.epochStart && time < input.epochEnd
  const radioOf = (device: string) => {
    const hotspot = hotspots.get(device)
    return hotspot?.status === 'active' ? radios.get(hotspot.deviceClass) : undefined
  }
  const usable = new Map<string, boolean>()
  const cellUsable = (device: string) => {
    let ok = usable.get(device)
    if (ok === undefined) {
      ok = usableCell((hotspots.get(device) as Hotspot).cell, p.distanceResolution)
      usable.set(device, ok)
    }
    return ok
  }

  // 1–2. Beacons: chosen, genuine for this epoch, on the hotspot's frequency, one each.
  const beaconers = chooseBeaconers(
    randomness,
    hotspots,
    radios,
    p.beaconShareBps,
    input.epochStart,
    p.distanceResolution,
  )
  const chosen = new Set(beaconers.map((b) => b.toLowerCase()))
  const message = hexToBytes(beaconMessage(input.chainId, input.deviceRegistry, input.epoch, randomness))
  const accepted = new Map<Hex, { device: string; record: BeaconRecord; radio: Radio }>()
  const beaconed = new Set<string>()
  const beaconVerdicts = input.beacons.map((beacon): BeaconRejectReason | null => {
    const device = beacon.device.toLowerCase()
    const radio = radioOf(device)
    if (!radio) return 'HOTSPOT_NOT_RADIO'
    if (!cellUsable(device)) return 'HOTSPOT_CELL_INVALID'
    if (!inEpoch(beacon.time)) return 'BEACON_OUTSIDE_EPOCH'
    if (!chosen.has(device)) return 'BEACON_NOT_CHOSEN'
    const signer = recoverSigner(input.keccak, message, beacon.payload)
    if (signer.type !== 'recovered' || signer.address !== device) return 'BEACON_PAYLOAD_INVALID'
    if (absolute(beacon.frequencyKhz - radio.frequencyKhz) > p.frequencyToleranceKhz)
      return 'BEACON_FREQUENCY'
    if (beaconed.has(device)) return 'BEACON_DUPLICATE'
    beaconed.add(device)
    accepted.set(beaconIdOf(beacon.payload).toLowerCase() as Hex, { device, record: beacon, radio })
    return null
  })

  // 3. Witnesses: each against its beacon.
  const witnessVerdicts: (WitnessRejectReason | null)[] = []
  const heard = new Set<string>()
  const distanceOf = createCellDistance(p.distanceResolution)
  /** Per witness, the beacons it reported impossibly. */
  const impossible = new Map<string, number>()
  /** Valid witnesses (input index) per beacon id, before the selection. */
  const valid = new Map<Hex, number[]>()
  input.witnesses.forEach((witness, index) => {
    const verdict = ((): WitnessRejectReason | null => {
      const device = witness.device.toLowerCase()
      const radio = radioOf(device)
      if (!radio) return 'HOTSPOT_NOT_RADIO'
      if (!cellUsable(device)) return 'HOTSPOT_CELL_INVALID'
      if (!inEpoch(witness.time)) return 'WITNESS_OUTSIDE_EPOCH'
      const id = witness.beaconId.toLowerCase() as Hex
      const beacon = accepted.get(id)
      if (!beacon) return 'WITNESS_BEACON_UNKNOWN'
      if (beacon.device === device) return 'WITNESS_SELF'
      const key = `${id}:${device}`
      if (heard.has(key)) return 'WITNESS_DUPLICATE'
      heard.add(key)
      if (witness.time < beacon.record.time || witness.time > beacon.record.time + p.witnessWindowSeconds)
        return 'WITNESS_LATE'
      if (absolute(witness.frequencyKhz - beacon.record.frequencyKhz) > p.frequencyToleranceKhz)
        return 'WITNESS_FREQUENCY'
      const from = hotspots.get(beacon.device) as Hotspot
      const to = hotspots.get(device) as Hotspot
      const distance = distanceOf(from.cell, to.cell)
      if (distance === undefined || distance > p.maxDistanceM) return 'WITNESS_TOO_FAR'
      if (distance < p.minDistanceM) return 'WITNESS_TOO_CLOSE'
      const strongest = maxRssiCenti({
        txPowerCentiDbm: beacon.radio.txPowerCentiDbm,
        gainsCentiDbi: beacon.radio.antennaGainCentiDbi + radio.antennaGainCentiDbi,
        distanceM: distance,
        frequencyKhz: beacon.record.frequencyKhz,
      })
      if (witness.rssiCentiDbm > strongest + p.rssiMarginCentiDb) {
        impossible.set(device, (impossible.get(device) ?? 0) + 1)
        return 'WITNESS_RSSI_TOO_STRONG'
      }
      const list = valid.get(id)
      if (list) list.push(index)
      else valid.set(id, [index])
      return null
    })()
    witnessVerdicts.push(verdict)
  })

  // 4. At most maxWitnessesPerBeacon rewarded per beacon, in the randomness's order.
  const units = new Map<string, HotspotUnits>()
  const unitsOf = (device: string) => {
    let u = units.get(device)
    if (!u) {
      u = {
        beacons: 0,
        beaconWitnesses: 0,
        witnesses: 0,
        densityBps: 10_000,
        impossibleReports: impossible.get(device) ?? 0,
      }
      units.set(device, u)
    }
    return u
  }
  const coverage: CoverageOutcome['coverage'] = []
  // keccak256(randomness ‖ beaconer ‖ witness), as `ranked` but with the fast keccak, into one
  // reused buffer; each address's bytes once
  const rankInput = new Uint8Array(32 + 20 + 20)
  rankInput.set(hexToBytes(randomness), 0)
  const addressBytes = new Map<string, Uint8Array>()
  const bytesOf = (address: string) => {
    let bytes = addressBytes.get(address)
    if (!bytes) {
      bytes = hexToBytes(address as Hex)
      addressBytes.set(address, bytes)
    }
    return bytes
  }
  for (const [id, beacon] of accepted) {
    unitsOf(beacon.device).beacons = 1
    const indices = valid.get(id) ?? []
    rankInput.set(bytesOf(beacon.device), 32)
    const order = indices
      .map((index) => {
        rankInput.set(bytesOf((input.witnesses[index] as WitnessRecord).device), 52)
        return { index, rank: Buffer.from(input.keccak(rankInput)).toString('hex') }
      })
      .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
    order.forEach(({ index }, k) => {
      const device = (input.witnesses[index] as WitnessRecord).device.toLowerCase()
      if (k >= p.maxWitnessesPerBeacon) witnessVerdicts[index] = 'WITNESS_NOT_SELECTED'
      else unitsOf(device).witnesses++
    })
    const rewarded = Math.min(order.length, p.maxWitnessesPerBeacon)
    unitsOf(beacon.device).beaconWitnesses = rewarded
    if (rewarded > 0) {
      const hotspot = hotspots.get(beacon.device) as Hotspot
      coverage.push({
        cell: parentCell(hotspot.cell, p.distanceResolution),
        beaconer: hotspot.device,
        witnesses: rewarded,
      })
    }
  }

  // 5. Density: per resolution, the active hotspots of a cell beyond its target share its worth.
  for (const level of p.density) {
    const count = new Map<bigint, number>()
    const cellOf = (device: string) => parentCell((hotspots.get(device) as Hotspot).cell, level.resolution)
    for (const device of units.keys()) count.set(cellOf(device), (count.get(cellOf(device)) ?? 0) + 1)
    for (const [device, u] of units) {
      const n = count.get(cellOf(device)) as number
      const scale = n <= level.target ? 10_000 : Math.floor((level.target * 10_000) / n)
      u.densityBps = Math.min(u.densityBps, scale)
    }
  }
  coverage.sort((a, b) => (a.cell < b.cell ? -1 : a.cell > b.cell ? 1 : 0))
  return { beaconers, beaconVerdicts, witnessVerdicts, units, coverage }
}

/**
 * A hotspot's weight: (beaconerWeight × rewarded witnesses of its beacon + witnessWeight × its
 * rewarded witnesses) × density; nothing when it reported impossibleReportLimit or more beacons impossibly.
 */
export function coverageWeight(
  u: HotspotUnits,
  p: Pick<CoverageParameters, 'beaconerWeight' | 'witnessWeight' | 'impossibleReportLimit'>,
): bigint {
  if (u.impossibleReports >= p.impossibleReportLimit) return 0n
  return (
    (p.beaconerWeight * BigInt(u.beaconWitnesses) + p.witnessWeight * BigInt(u.witnesses)) *
    BigInt(u.densityBps)
  )
}

/** The cell's parent at `resolution` (the cell itself when it is that coarse already). */
function parentCell(cell: bigint, resolution: number): bigint {
  const hex = cell.toString(16)
  const own = Number((cell >> 52n) & 0xfn)
  return own <= resolution ? cell : BigInt(`0x${cellToParentHex(hex, resolution)}`)
}
