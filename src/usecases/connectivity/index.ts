/**
 * Connectivity with proof of coverage: the second use case. Hotspots sign beacons (when the
 * epoch's randomness chose them) and witness records of the beacons they heard; the rules
 * (coverageRules.ts) judge them; a hotspot earns by the rewarded witnesses of its beacon and its
 * own rewarded witnesses, scaled down where hotspots crowd a cell.
 */
import { type Hex, numberToHex } from 'viem'
import { z } from 'zod'
import { parseScaled } from '../../blueprint/blueprintSchema.ts'
import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { RecordKind } from '../../readings/recordKinds.ts'
import { ACCEPTED, type RulesInput, type UseCase } from '../useCase.ts'
import { coverageRoute } from './coverageRoute.ts'
import {
  BEACON_REJECT_REASONS,
  type BeaconRecord,
  type CoverageParameters,
  coverageWeight,
  type Hotspot,
  judgeCoverage,
  type Radio,
  WITNESS_REJECT_REASONS,
  type WitnessRecord,
} from './coverageRules.ts'

/** A chosen hotspot's beacon: its payload is its signature (r, s, v) of the epoch's beacon message. */
export const BEACON_KIND: RecordKind = {
  name: 'Beacon',
  fields: [
    { name: 'frequencyKhz', type: 'uint64' },
    { name: 'payloadR', type: 'bytes32' },
    { name: 'payloadS', type: 'bytes32' },
    { name: 'payloadV', type: 'uint32' },
  ],
}

/** A hotspot's report of a beacon it heard: the beacon's id (keccak256 of its payload), RSSI, SNR, frequency. */
export const WITNESS_KIND: RecordKind = {
  name: 'Witness',
  fields: [
    { name: 'beacon', type: 'bytes32' },
    { name: 'rssiCentiDbm', type: 'int32' },
    { name: 'snrCentiDb', type: 'int32' },
    { name: 'frequencyKhz', type: 'uint64' },
  ],
}

/** A decimal in the blueprint, exact at `scale` places (what parseScaled turns into an integer). */
const decimal = (scale: number, min: bigint, max: bigint) =>
  z
    .union([z.string(), z.number()])
    .transform(String)
    .superRefine((text, ctx) => {
      let value: bigint
      try {
        value = parseScaled(text, scale)
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message })
        return
      }
      if (value < min || value > max) ctx.addIssue({ code: 'custom', message: `${text} is out of range` })
    })

/** The blueprint's `parameters` of a connectivity network. */
export const coverageParametersSchema = z.object({
  beaconShareBps: z.number().int().min(1).max(10_000),
  maxWitnessesPerBeacon: z.number().int().min(1).max(1000),
  witnessWindowSeconds: z.number().int().min(0),
  frequencyToleranceKhz: z.number().int().min(0),
  distanceResolution: z.number().int().min(7).max(12),
  minDistanceM: z.number().int().min(0),
  maxDistanceM: z.number().int().min(1),
  rssiMarginDb: decimal(2, 0n, 3_000n),
  density: z.array(
    z.object({ resolution: z.number().int().min(0).max(15), target: z.number().int().min(1) }),
  ),
  impossibleReportLimit: z.number().int().min(1).max(1000),
  // bounded so that every hotspot's score stays a safe integer
  beaconerWeight: z.number().int().min(0).max(1000),
  witnessWeight: z.number().int().min(0).max(1000),
})

/** A class's `parameters.radio`: the hotspot model's transmit power, antenna gain and frequency. */
export const radioSchema = z.object({
  txPowerDbm: decimal(2, -10_000n, 10_000n),
  antennaGainDbi: decimal(2, -5_000n, 5_000n),
  frequencyMHz: decimal(3, 1n, 100_000_000n),
})

type Parsed = { parameters: CoverageParameters; radios: Map<number, Radio> }
const parsedByBlueprint = new WeakMap<Blueprint, Parsed>()

/** The coverage parameters and radios of a blueprint (checked by blueprintProblems at load). */
export function coverageOf(blueprint: Blueprint): Parsed {
  const known = parsedByBlueprint.get(blueprint)
  if (known) return known
  const p = coverageParametersSchema.parse(blueprint.parameters)
  const parameters: CoverageParameters = {
    ...p,
    witnessWindowSeconds: BigInt(p.witnessWindowSeconds),
    frequencyToleranceKhz: BigInt(p.frequencyToleranceKhz),
    minDistanceM: BigInt(p.minDistanceM),
    maxDistanceM: BigInt(p.maxDistanceM),
    rssiMarginCentiDb: Number(parseScaled(p.rssiMarginDb, 2)),
    beaconerWeight: BigInt(p.beaconerWeight),
    witnessWeight: BigInt(p.witnessWeight),
  }
  const radios = new Map<number, Radio>()
  for (const cls of blueprint.deviceClasses) {
    const radio = radioSchema.safeParse(cls.parameters?.radio)
    if (!radio.success) continue
    radios.set(cls.id, {
      txPowerCentiDbm: Number(parseScaled(radio.data.txPowerDbm, 2)),
      antennaGainCentiDbi: Number(parseScaled(radio.data.antennaGainDbi, 2)),
      frequencyKhz: parseScaled(radio.data.frequencyMHz, 3),
    })
  }
  const parsed = { parameters, radios }
  parsedByBlueprint.set(blueprint, parsed)
  return parsed
}

const BYTES32 = (v: bigint): Hex => numberToHex(v, { size: 32 })

/** The beacon's payload (65-byte signature) from a Beacon record's values. */
export const beaconPayloadOf = (values: readonly bigint[]): Hex =>
  `0x${BYTES32(values[1] as bigint).slice(2)}${BYTES32(values[2] as bigint).slice(2)}${(values[3] as bigint).toString(16).padStart(2, '0')}`

/** A Beacon record's values from a payload (65-byte signature) and frequency. */
export function beaconValues(payload: Hex, frequencyKhz: bigint): bigint[] {
  return [
    frequencyKhz,
    BigInt(`0x${payload.slice(2, 66)}`),
    BigInt(`0x${payload.slice(66, 130)}`),
    BigInt(`0x${payload.slice(130, 132)}`),
  ]
}

const REJECT_REASONS = [...new Set([...BEACON_REJECT_REASONS, ...WITNESS_REJECT_REASONS])]
const UNIT_NAMES = [
  'beacons',
  'beaconWitnesses',
  'witnesses',
  'densityBps',
  'impossibleReports',
  'score',
] as const

function judge(input: RulesInput): Readonly<Record<string, number>>[] {
  const { parameters, radios } = coverageOf(input.blueprint)
  const hotspots = new Map<string, Hotspot>()
  for (const [address, record] of input.devices)
    hotspots.set(address, {
      device: record.device,
      owner: record.owner,
      cell: record.h3Cell,
      deviceClass: record.deviceClass,
      status: record.status,
      registeredAt: record.registeredAt ?? 0n,
    })
  // the records the pipeline left open, by kind (canonical order is kept)
  const beacons: BeaconRecord[] = []
  const beaconAt: number[] = []
  const witnesses: WitnessRecord[] = []
  const witnessAt: number[] = []
  input.readings.forEach((reading: SignedReading, i) => {
    if (input.verdicts[i] !== ACCEPTED) return
    if (reading.kind === 1) {
      witnesses.push({
        device: reading.device,
        seq: reading.seq,
        time: reading.time,
        beaconId: BYTES32(reading.values[0] as bigint),
        rssiCentiDbm: Number(reading.values[1]),
        snrCentiDb: Number(reading.values[2]),
        frequencyKhz: reading.values[3] as bigint,
      })
      witnessAt.push(i)
    } else {
      beacons.push({
        device: reading.device,
        seq: reading.seq,
        time: reading.time,
        frequencyKhz: reading.values[0] as bigint,
        payload: beaconPayloadOf(reading.values),
      })
      beaconAt.push(i)
    }
  })
  const outcome = judgeCoverage({
    chainId: input.network.chainId,
    deviceRegistry: input.network.deviceRegistry,
    epoch: input.epoch,
    epochStart: input.epochStart,
    epochEnd: input.epochEnd,
    randomness: input.randomness,
    hotspots,
    radios,
    parameters,
    beacons,
    witnesses,
    keccak: input.keccak,
  })
  outcome.beaconVerdicts.forEach((reason, k) => {
    if (reason) input.verdicts[beaconAt[k] as number] = input.code(reason)
  })
  outcome.witnessVerdicts.forEach((reason, k) => {
    if (reason) input.verdicts[witnessAt[k] as number] = input.code(reason)
  })
  return input.runs.map((run) => {
    const units = outcome.units.get(run.device)
    if (!units) return {}
    return { ...units, score: Number(coverageWeight(units, parameters)) }
  })
}

export const connectivity: UseCase = {
  id: 'connectivity',
  version: 1,
  recordKinds: [BEACON_KIND, WITNESS_KIND],
  rejectReasons: REJECT_REASONS,
  unitNames: UNIT_NAMES,
  epochSummary: { beacons: 'beacons accepted', witnesses: 'witnesses rewarded' },
  routes: [coverageRoute(UNIT_NAMES)],
  dashboardPanel: new URL('./dashboardPanel.js', import.meta.url),
  judge,
  // the rules weigh (coverageWeight, with the blueprint's weights): the receipt shows the parts
  weight: (device) => BigInt(device.units.score ?? 0),
  recordShapeProblem: () => undefined, // each kind's values are checked on the wire against the kind
  async simulate(context) {
    const { runCoverageFleet } = await import('./runCoverageFleet.ts')
    return runCoverageFleet({
      ...context,
      ...(context.size !== undefined ? { hotspots: Math.max(4, context.size - 6) } : {}),
    })
  },
  blueprintProblems(blueprint) {
    const problems: string[] = []
    const p = coverageParametersSchema.safeParse(blueprint.parameters)
    if (!p.success)
      problems.push(...p.error.issues.map((i) => `parameters.${i.path.join('.')}: ${i.message}`))
    blueprint.deviceClasses.forEach((cls, i) => {
      const radio = radioSchema.safeParse(cls.parameters?.radio)
      if (!radio.success)
        problems.push(`deviceClasses.${i}.parameters.radio: txPowerDbm, antennaGainDbi and frequencyMHz`)
    })
    return problems
  },
}
