import { getResolution, greatCircleDistance, isValidCell } from 'h3-js'
import { describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../../blueprint/loadBlueprint.ts'
import { createFleet, type Fleet, type Station } from './createFleet.ts'
import { faultKinds } from './faults.ts'

const blueprint = loadBlueprint('blueprints/environment.yaml')
const fields = blueprint.classById.get(1)?.fields ?? []
const START = 1_764_201_600n // 2025-11-27T00:00:00Z
const HOUR = 3600n
const TEMPERATURE = 0
const HUMIDITY = 1

/** The UTC time, on the day starting at `day`, when a station's local solar clock shows `hour`. */
function atSolarHour(station: Station, day: bigint, hour: number): bigint {
  const utcHours = (((hour - station.city.lng / 15) % 24) + 24) % 24
  return day + BigInt(Math.round(utcHours * 3600))
}
const valuesOf = (fleet: Fleet, index: number, time: bigint) => fleet.readingsAt(time)[index]?.values ?? []
const median = (xs: bigint[]) =>
  [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[Math.floor(xs.length / 2)] as bigint

describe('createFleet', () => {
  it('is deterministic for a seed: same places, keys and values; another seed differs', () => {
    const a = createFleet({ size: 16, blueprint, seed: 42, startTime: START })
    const b = createFleet({ size: 16, blueprint, seed: 42, startTime: START })
    const c = createFleet({ size: 16, blueprint, seed: 43, startTime: START })
    const describe = (f: Fleet) => f.stations.map((s) => [s.account.address, s.h3Cell, s.city.name])
    expect(describe(a)).toEqual(describe(b))
    for (const t of [START, START + 7n * HOUR, START + 123_457n]) {
      expect(a.readingsAt(t).map((r) => r.values)).toEqual(b.readingsAt(t).map((r) => r.values))
      expect(a.readingsAt(t).map((r) => r.values)).not.toEqual(c.readingsAt(t).map((r) => r.values))
    }
    expect(describe(a)).not.toEqual(describe(c))
    expect(new Set(a.stations.map((s) => s.account.address)).size).toBe(16)
  })

  it('places stations in resolution-8 cells within ~5 km of real cities, several per city', () => {
    const fleet = createFleet({ size: 40, blueprint, seed: 1, startTime: START })
    const perCity = new Map<string, number>()
    for (const s of fleet.stations) {
      expect(isValidCell(s.h3Cell.toString(16))).toBe(true)
      expect(getResolution(s.h3Cell.toString(16))).toBe(8)
      expect(greatCircleDistance([s.lat, s.lng], [s.city.lat, s.city.lng], 'km')).toBeLessThanOrEqual(5.01)
      perCity.set(s.city.name, (perCity.get(s.city.name) ?? 0) + 1)
    }
    expect(perCity.size).toBe(8)
    expect(Math.min(...perCity.values())).toBeGreaterThanOrEqual(4)
    // a small fleet uses fewer cities so each still has neighbours
    expect(new Set(createFleet({ size: 9, blueprint, seed: 1 }).stations.map((s) => s.city.name)).size).toBe(
      2,
    )
  })

  it('honest temperatures follow the local solar day, humidity moves against them, all within range', () => {
    const fleet = createFleet({ size: 40, blueprint, seed: 9, startTime: START })
    for (const day of [START, START + 24n * HOUR, START + 96n * HOUR]) {
      for (const station of fleet.stations) {
        const afternoon = valuesOf(fleet, station.index, atSolarHour(station, day, 15))
        const beforeDawn = valuesOf(fleet, station.index, atSolarHour(station, day, 4))
        expect(afternoon[TEMPERATURE], station.city.name).toBeGreaterThan(
          (beforeDawn[TEMPERATURE] as bigint) + 300n,
        )
        expect(afternoon[HUMIDITY], station.city.name).toBeLessThan(beforeDawn[HUMIDITY] as bigint)
      }
    }
    for (let t = START; t < START + 72n * HOUR; t += 1_800n) {
      for (const { values } of fleet.readingsAt(t)) {
        values.forEach((v, i) => {
          const field = fields[i]
          expect(v >= (field?.min ?? 0n) && v <= (field?.max ?? 0n), `${field?.name} = ${v}`).toBe(true)
        })
      }
    }
  })

  it('each value fault produces what it claims', () => {
    const faults = [
      { station: 0, kind: 'stuck' as const },
      { station: 1, kind: 'outOfRange' as const },
      { station: 2, kind: 'drift' as const },
      { station: 3, kind: 'liar' as const },
    ]
    // size 16 → 4 cities; station i is in city i mod 4, so each faulty station has 3 honest neighbours
    const faulty = createFleet({ size: 16, blueprint, seed: 5, startTime: START, faults })
    const honest = createFleet({ size: 16, blueprint, seed: 5, startTime: START })
    const times = [START, START + HOUR, START + 5n * HOUR, START + 10n * HOUR]

    const stuck = times.map((t) => valuesOf(faulty, 0, t))
    for (const values of stuck) expect(values).toEqual(stuck[0])
    expect(valuesOf(honest, 0, times[1] as bigint)).not.toEqual(stuck[0])

    const temperatureMax = fields[TEMPERATURE]?.max as bigint
    for (const t of times) expect(valuesOf(faulty, 1, t)[TEMPERATURE]).toBe(9000n) // 90 °C > 60 °C
    expect(temperatureMax).toBe(6000n)

    // 0.5 °C per hour since the start, on top of the honest value
    const drift = times.map(
      (t) =>
        (valuesOf(faulty, 2, t)[TEMPERATURE] as bigint) - (valuesOf(honest, 2, t)[TEMPERATURE] as bigint),
    )
    expect(drift).toEqual([0n, 50n, 250n, 500n])

    for (const t of times) {
      const liar = valuesOf(faulty, 3, t)
      const others = faulty
        .readingsAt(t)
        .filter((r) => r.station.city === faulty.stations[3]?.city && r.station.index !== 3)
      expect(others.length).toBe(3)
      // the validators' rule: an outlier is more than 5 × max(MAD, 2 °C) from the neighbours' median
      expect(
        (liar[TEMPERATURE] as bigint) - median(others.map((o) => o.values[TEMPERATURE] as bigint)),
      ).toBeGreaterThan(1000n)
      const humidityGap = (liar[HUMIDITY] as bigint) - median(others.map((o) => o.values[HUMIDITY] as bigint))
      expect(humidityGap > 2500n || humidityGap < -2500n, `humidity gap ${humidityGap}`).toBe(true)
      for (const [i, v] of liar.entries()) {
        expect(v >= (fields[i]?.min ?? 0n) && v <= (fields[i]?.max ?? 0n)).toBe(true)
      }
    }
    // stations without faults are untouched by others' faults
    expect(valuesOf(faulty, 4, START + HOUR)).toEqual(valuesOf(honest, 4, START + HOUR))
  })

  it('a fault mix picks distinct stations spread over the cities, deterministically', () => {
    const mix = { stuck: 1, outOfRange: 1, drift: 1, liar: 1, replay: 1, forged: 1, clockSkew: 1 }
    const fleet = createFleet({ size: 32, blueprint, seed: 3, faults: mix, startTime: START })
    expect(fleet.faults.map((f) => f.kind)).toEqual([...faultKinds])
    const stations = fleet.faults.map((f) => f.station)
    expect(new Set(stations).size).toBe(7)
    expect(new Set(stations.map((s) => fleet.stations[s]?.city.name)).size).toBe(7)
    expect(createFleet({ size: 32, blueprint, seed: 3, faults: mix, startTime: START }).faults).toEqual(
      fleet.faults,
    )
    expect(fleet.stations.filter((s) => s.impostor).map((s) => s.index)).toEqual(
      fleet.faults.filter((f) => f.kind === 'forged').map((f) => f.station),
    )
  })

  it('refuses faults it cannot apply', () => {
    expect(() => createFleet({ size: 4, blueprint, seed: 1, faults: { liar: 5 } })).toThrow(
      /5 faulty stations asked of a fleet of 4/,
    )
    expect(() =>
      createFleet({ size: 4, blueprint, seed: 1, faults: [{ station: 4, kind: 'stuck' }] }),
    ).toThrow(/station 4/)
    expect(() =>
      createFleet({ size: 4, blueprint, seed: 1, faults: [{ station: 0, kind: 'drift', field: 'wind' }] }),
    ).toThrow(/no field wind/)
  })
})
