import { latLngToCell } from 'h3-js'
import { type Hex, keccak256, type PrivateKeyAccount, toBytes } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { parseScaled } from '../../../blueprint/blueprintSchema.ts'
import type { Blueprint, BlueprintField, DeviceClassRules } from '../../../blueprint/loadBlueprint.ts'
import { ConfigError } from '../../../errors.ts'
import { hash32, mulberry32, noise } from '../../simulatorRandom.ts'
import { type City, cities } from './cities.ts'
import { type FaultSpec, type FleetFaults, resolveFaults } from './faults.ts'

export type { FaultKind, FaultMix, FaultSpec, FleetFaults } from './faults.ts'

export type CreateFleetParameters = {
  /** Number of stations. */
  size: number
  blueprint: Blueprint
  /** Everything (places, keys, values, which stations are faulty in a mix) follows from it. */
  seed: number
  /** Faulty stations, per station or as a mix; default none. */
  faults?: FleetFaults
  /** Unix seconds: where drift starts and stuck stations freeze by default (default: now). */
  startTime?: bigint
  /** The stations' class in the blueprint (default: its first class). */
  deviceClass?: number
}

/** A virtual station. */
export type Station = {
  index: number
  city: City
  lat: number
  lng: number
  /** Resolution-8 H3 cell index, as the registry stores it. */
  h3Cell: bigint
  /** The station's key, derived from the seed: anyone who knows the seed can sign as it. */
  account: PrivateKeyAccount
  /** That key itself (0x + 64 hex), for signing many stations' readings at once off the main thread. */
  privateKey: Hex
  /** Another key, that signs this station's readings when it has the `forged` fault. */
  impostor: PrivateKeyAccount | undefined
  impostorKey: Hex | undefined
  faults: readonly FaultSpec[]
}

/** A station's values at a time: fixed-point integers in the class's field order. */
export type StationValues = { station: Station; time: bigint; values: bigint[] }

export type Fleet = {
  seed: number
  blueprint: Blueprint
  deviceClass: DeviceClassRules
  startTime: bigint
  stations: readonly Station[]
  /** Every station's faults, resolved (a mix becomes a list naming the stations). */
  faults: readonly FaultSpec[]
  /** Every station's values at `time` (unix seconds), value faults applied; a pure function of the seed. */
  readingsAt(time: bigint): StationValues[]
}

/** Stations per city when the fleet is large enough: several neighbours each. */
const STATIONS_PER_CITY = 4
const SCATTER_KM = 5
const H3_RESOLUTION = 8
const DAY = 86_400
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/**
 * A fleet of virtual weather stations in real cities, deterministic from `seed`. Stations are
 * spread over min(8, ⌊size / 4⌋) cities (at least one), round-robin, each within ~5 km of its
 * city's centre, so every city has several neighbouring stations.
 *
 * Values (floating point here, rounded to the blueprint's fixed point: the simulator is no part
 * of consensus): temperature follows the local solar day (coolest near 03:00, warmest near 15:00
 * solar time) around a city mean, plus weather over days; humidity moves against temperature;
 * PM2.5 and pressure vary slowly; every field gets small noise. Honest values are clamped into
 * the blueprint's ranges. Fields the simulator does not know vary slowly around mid-range.
 * @example
 * const fleet = createFleet({ size: 40, blueprint, seed: 7, faults: { stuck: 1, liar: 1, forged: 1 } })
 * const now = fleet.readingsAt(1764200000n)
 */
export function createFleet(parameters: CreateFleetParameters): Fleet {
  const { size, blueprint, seed } = parameters
  if (!Number.isInteger(size) || size < 1)
    throw new ConfigError('FLEET_INVALID', `fleet size ${size} is not a positive integer`)
  if (!Number.isInteger(seed)) throw new ConfigError('FLEET_INVALID', `seed ${seed} is not an integer`)
  const deviceClass =
    parameters.deviceClass === undefined
      ? blueprint.deviceClasses[0]
      : blueprint.classById.get(parameters.deviceClass)
  if (!deviceClass) {
    throw new ConfigError(
      'DEVICE_CLASS_UNKNOWN',
      `blueprint ${blueprint.name} has no device class ${parameters.deviceClass}`,
    )
  }
  const startTime = parameters.startTime ?? BigInt(Math.floor(Date.now() / 1000))
  const fields = deviceClass.fields

  const cityCount = Math.min(cities.length, Math.max(1, Math.floor(size / STATIONS_PER_CITY)))
  const random = mulberry32(seed)
  const places = Array.from({ length: size }, (_, index) => {
    const cityIndex = index % cityCount
    const city = cities[cityIndex] as City
    // uniform over a disc: the distance goes as the square root of a uniform draw
    const bearing = random() * 2 * Math.PI
    const km = SCATTER_KM * Math.sqrt(random())
    const lat = city.lat + (km * Math.cos(bearing)) / 111.32
    const lng = city.lng + (km * Math.sin(bearing)) / (111.32 * Math.cos((city.lat * Math.PI) / 180))
    return {
      index,
      cityIndex,
      city,
      lat,
      lng,
      microclimate: (random() - 0.5) * 1.2,
      dust: 0.85 + random() * 0.3,
    }
  })
  const faults = resolveFaults(
    parameters.faults ?? [],
    places.map((p) => p.cityIndex),
    seed,
  )

  const stations: Station[] = places.map((p) => {
    const own = faults.filter((f) => f.station === p.index)
    const privateKey = simulatorKey(seed, `station:${p.index}`)
    const impostorKey = own.some((f) => f.kind === 'forged')
      ? simulatorKey(seed, `impostor:${p.index}`)
      : undefined
    return {
      index: p.index,
      city: p.city,
      lat: p.lat,
      lng: p.lng,
      h3Cell: BigInt(`0x${latLngToCell(p.lat, p.lng, H3_RESOLUTION)}`),
      account: privateKeyToAccount(privateKey),
      privateKey,
      impostor: impostorKey ? privateKeyToAccount(impostorKey) : undefined,
      impostorKey,
      faults: own,
    }
  })
  const valueFaults = stations.map((s) => s.faults.flatMap((f) => compileValueFault(f, fields, startTime)))

  /** What the station would honestly measure: a pure function of (seed, station, time). */
  function honest(index: number, time: bigint): bigint[] {
    const place = places[index] as (typeof places)[number]
    const { city, cityIndex } = place
    const t = Number(time)
    const words = [seed, index, t % 2 ** 32, Math.floor(t / 2 ** 32)]
    const phase = (k: number) => (hash32(seed, cityIndex, k) / 2 ** 32) * 2 * Math.PI
    const wave = (periodSeconds: number, k: number) => Math.sin((2 * Math.PI * t) / periodSeconds + phase(k))
    const solarHour = (((t / 3600 + city.lng / 15) % 24) + 24) % 24
    const temperature =
      city.meanTemperature +
      place.microclimate +
      city.temperatureAmplitude * Math.sin((2 * Math.PI * (solarHour - 9)) / 24) +
      1.5 * wave(3.7 * DAY, 1) +
      0.15 * noise(...words, 0)
    return fields.map((field, f) => {
      let value: number
      switch (field.name) {
        case 'temperature':
          value = temperature
          break
        case 'humidity':
          value =
            city.meanHumidity -
            2.5 * (temperature - city.meanTemperature) +
            4 * wave(2.9 * DAY, 2) +
            noise(...words, f)
          value = Math.min(100, Math.max(3, value))
          break
        case 'pm25':
          value =
            city.meanPm25 * place.dust * (1 + 0.3 * wave(19 * 3600, 3)) +
            0.05 * city.meanPm25 * noise(...words, f)
          value = Math.max(0, value)
          break
        case 'pressure':
          value =
            1013 +
            8 * wave(4.3 * DAY, 4) +
            0.8 * Math.sin((4 * Math.PI * solarHour) / 24) +
            0.2 * noise(...words, f)
          break
        default: {
          const min = toUnits(field.min, field.scale)
          const range = toUnits(field.max, field.scale) - min
          value = min + range / 2 + 0.1 * range * wave(DAY, 10 + f) + 0.01 * range * noise(...words, f)
        }
      }
      return clamp(BigInt(Math.round(value * 10 ** field.scale)), field)
    })
  }

  const frozen = new Map<string, bigint[]>()
  function readingOf(station: Station, time: bigint): StationValues {
    let values = honest(station.index, time)
    for (const fault of valueFaults[station.index] ?? []) {
      switch (fault.kind) {
        case 'stuck':
          if (time >= fault.since) {
            const key = `${station.index}:${fault.since}`
            if (!frozen.has(key)) frozen.set(key, honest(station.index, fault.since))
            values = [...(frozen.get(key) as bigint[])]
          }
          break
        case 'outOfRange':
          values[fault.field] = fault.value
          break
        case 'drift': {
          const elapsed = time > startTime ? time - startTime : 0n
          const field = fields[fault.field] as BlueprintField
          values[fault.field] = clamp(
            (values[fault.field] as bigint) + (fault.perHour * elapsed) / 3600n,
            field,
          )
          break
        }
        case 'liar':
          for (const [f, offset] of fault.offsets) {
            // the offset's sign flips when only that keeps the lie in range: far, but plausible
            const field = fields[f] as BlueprintField
            const value = values[f] as bigint
            const flipped = value - offset
            const outside = (v: bigint) => v < field.min || v > field.max
            values[f] = clamp(outside(value + offset) && !outside(flipped) ? flipped : value + offset, field)
          }
          break
      }
    }
    return { station, time, values }
  }

  return {
    seed,
    blueprint,
    deviceClass,
    startTime,
    stations,
    faults,
    readingsAt: (time) => stations.map((s) => readingOf(s, time)),
  }
}

type ValueFault =
  | { kind: 'stuck'; since: bigint }
  | { kind: 'outOfRange'; field: number; value: bigint }
  | { kind: 'drift'; field: number; perHour: bigint }
  | { kind: 'liar'; offsets: Array<[number, bigint]> }

/** Turns a fault's field names and decimals into field indexes and fixed-point integers. */
function compileValueFault(
  fault: FaultSpec,
  fields: readonly BlueprintField[],
  startTime: bigint,
): ValueFault[] {
  const fieldIndex = (name: string | undefined) => {
    const wanted = name ?? (fields.some((f) => f.name === 'temperature') ? 'temperature' : fields[0]?.name)
    const index = fields.findIndex((f) => f.name === wanted)
    if (index < 0)
      throw new ConfigError(
        'FLEET_FAULTS_INVALID',
        `fault ${fault.kind} of station ${fault.station}: no field ${wanted}`,
      )
    return index
  }
  const fixed = (value: string, field: BlueprintField) => {
    try {
      return parseScaled(value, field.scale)
    } catch (cause) {
      throw new ConfigError(
        'FLEET_FAULTS_INVALID',
        `fault ${fault.kind} of station ${fault.station}: ${(cause as Error).message}`,
        { cause },
      )
    }
  }
  switch (fault.kind) {
    case 'stuck':
      return [{ kind: 'stuck', since: fault.since ?? startTime }]
    case 'outOfRange': {
      const index = fieldIndex(fault.field)
      const field = fields[index] as BlueprintField
      const value =
        fault.value === undefined ? field.max + (field.max - field.min) / 4n : fixed(fault.value, field)
      return [{ kind: 'outOfRange', field: index, value }]
    }
    case 'drift': {
      const index = fieldIndex(fault.field)
      const field = fields[index] as BlueprintField
      const perHour =
        fault.perHour === undefined ? (field.max - field.min) / 240n : fixed(fault.perHour, field)
      return [{ kind: 'drift', field: index, perHour }]
    }
    case 'liar': {
      const defaults: Record<string, string> = fields.some(
        (f) => f.name === 'temperature' || f.name === 'humidity',
      )
        ? { temperature: '15', humidity: '40' }
        : {}
      const asked = fault.offsets ?? defaults
      const offsets = Object.entries(asked)
        .filter(([name]) => fault.offsets !== undefined || fields.some((f) => f.name === name))
        .map(([name, offset]): [number, bigint] => {
          const index = fieldIndex(name)
          return [index, fixed(offset, fields[index] as BlueprintField)]
        })
      if (offsets.length === 0) {
        const field = fields[0] as BlueprintField
        offsets.push([0, (field.max - field.min) / 8n])
      }
      return [{ kind: 'liar', offsets }]
    }
    default:
      return [] // replay, forged, clockSkew act when the reading is sent (runFleet)
  }
}

/** A deterministic secp256k1 private key for a label of a seed's fleet. */
export function simulatorKey(seed: number, label: string): Hex {
  for (let attempt = 0; ; attempt++) {
    const key = keccak256(toBytes(`depin-simulator:${seed}:${label}:${attempt}`))
    const k = BigInt(key)
    if (k > 0n && k < SECP256K1_N) return key
  }
}

const clamp = (value: bigint, field: BlueprintField) =>
  value < field.min ? field.min : value > field.max ? field.max : value

const toUnits = (fixed: bigint, scale: number) => Number(fixed) / 10 ** scale
