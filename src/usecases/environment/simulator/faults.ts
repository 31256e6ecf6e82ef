/**
 * The faults a simulated station can have, and how a fleet's faults are configured: either a
 * list naming each faulty station, or a mix saying how many stations get each kind.
 */
import { ConfigError } from '../../../errors.ts'
import { mulberry32 } from '../../simulatorRandom.ts'

export const faultKinds = ['stuck', 'outOfRange', 'drift', 'liar', 'replay', 'forged', 'clockSkew'] as const

/**
 * - `stuck`: from `since` on, the values stay those of `since`.
 * - `outOfRange`: one field far beyond the blueprint's maximum.
 * - `drift`: one field gains an offset growing linearly since the fleet's start.
 * - `liar`: plausible (in range) values far from its neighbours'.
 * - `replay`: after each new reading, re-sends its previous reading the gateway accepted.
 * - `forged`: its readings are signed by another key.
 * - `clockSkew`: its timestamps run ahead of the clock.
 */
export type FaultKind = (typeof faultKinds)[number]

/** One station's fault; parameters default as documented on each. */
export type FaultSpec =
  | {
      station: number
      kind: 'stuck'
      /** Unix seconds from which the values are frozen (default: the fleet's start time). */
      since?: bigint
    }
  | {
      station: number
      kind: 'outOfRange'
      /** Default `temperature` (else the first field). */
      field?: string
      /** In the field's unit; default max + (max − min) / 4 (90 °C for temperature). */
      value?: string
    }
  | {
      station: number
      kind: 'drift'
      /** Default `temperature` (else the first field). */
      field?: string
      /** Growth per hour, in the field's unit; default (max − min) / 240 (0.5 °C/h). Clamped at the bounds. */
      perHour?: string
    }
  | {
      station: number
      kind: 'liar'
      /**
       * Added per field, in the fields' units; default temperature +15, humidity +40. Where adding
       * would leave the range, the offset is subtracted instead (else clamped): always in range.
       */
      offsets?: Readonly<Record<string, string>>
    }
  | { station: number; kind: 'replay' }
  | { station: number; kind: 'forged' }
  | {
      station: number
      kind: 'clockSkew'
      /** How far ahead timestamps run; default 3600 (one hour). */
      seconds?: bigint
    }

/** How many stations get each fault kind (default parameters), chosen from the seed. */
export type FaultMix = Partial<Record<FaultKind, number>>

/** A fleet's faults: explicit per station, or a mix. */
export type FleetFaults = readonly FaultSpec[] | FaultMix

/**
 * Resolves a fleet's faults to one list. A mix assigns kinds, in `faultKinds` order, to distinct
 * stations spread over the cities — one per city before any city gets a second — so every
 * faulty station keeps honest neighbours to be compared with.
 */
export function resolveFaults(
  faults: FleetFaults,
  stationCities: readonly number[],
  seed: number,
): FaultSpec[] {
  const size = stationCities.length
  if (Array.isArray(faults)) {
    const list = faults as readonly FaultSpec[]
    for (const fault of list) {
      if (!Number.isInteger(fault.station) || fault.station < 0 || fault.station >= size) {
        throw new ConfigError(
          'FLEET_FAULTS_INVALID',
          `fault ${fault.kind} names station ${fault.station}, the fleet has 0..${size - 1}`,
        )
      }
      if (!faultKinds.includes(fault.kind)) {
        throw new ConfigError('FLEET_FAULTS_INVALID', `unknown fault kind ${String(fault.kind)}`)
      }
    }
    return [...list]
  }
  const mix = faults as FaultMix
  let total = 0
  for (const [kind, count] of Object.entries(mix)) {
    if (!faultKinds.includes(kind as FaultKind))
      throw new ConfigError('FLEET_FAULTS_INVALID', `unknown fault kind ${kind}`)
    if (!Number.isInteger(count) || (count as number) < 0) {
      throw new ConfigError('FLEET_FAULTS_INVALID', `${kind}: ${count} is not a count of stations`)
    }
    total += count as number
  }
  if (total > size)
    throw new ConfigError('FLEET_FAULTS_INVALID', `${total} faulty stations asked of a fleet of ${size}`)

  const random = mulberry32(seed ^ 0x5eed_fa17)
  const byCity = new Map<number, number[]>()
  stationCities.forEach((city, station) => {
    byCity.set(city, [...(byCity.get(city) ?? []), station])
  })
  const groups = [...byCity.values()].map((stations) => shuffle(stations, random))
  const order: number[] = []
  for (let round = 0; order.length < size; round++) {
    for (const group of groups) {
      const station = group[round]
      if (station !== undefined) order.push(station)
    }
  }
  const resolved: FaultSpec[] = []
  for (const kind of faultKinds) {
    for (let i = 0; i < (mix[kind] ?? 0); i++) {
      resolved.push({ station: order[resolved.length] as number, kind })
    }
  }
  return resolved
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}
