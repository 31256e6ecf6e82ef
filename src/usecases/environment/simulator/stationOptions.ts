import { ConfigError } from '../../../errors.ts'
import type { Fleet, FleetFaults } from './createFleet.ts'
import { type FaultKind, type FaultMix, faultKinds } from './faults.ts'
import type { FleetBatch } from './runFleet.ts'

/** What a caller of `depin up`'s network may set of the environment's simulated stations. */
export type EnvironmentSimulationOptions = {
  /** How the stations send their readings (default 'mqtt'). */
  transport?: 'mqtt' | 'http'
  faults?: FleetFaults
  /** A fleet built by the caller (tests); overrides size, seed and faults. */
  fleet?: Fleet
  /** Seconds between two readings of a station (default: the blueprint's minimum interval + 1). */
  intervalSeconds?: number
  /** Called with the gateway's answer to each batch the stations send. */
  onBatch?: (batch: FleetBatch) => void
}

/** Parses `stuck=1,liar=2` (or `none`) into a fault mix: `depin up --faults`. */
export function parseFaultMix(text: string): FaultMix {
  if (text === 'none' || text === '') return {}
  const mix: FaultMix = {}
  for (const part of text.split(',')) {
    const [kind, count] = part.split('=')
    if (!faultKinds.includes(kind as FaultKind) || !/^\d+$/.test(count ?? '')) {
      throw new ConfigError(
        'FAULTS_INVALID',
        `--faults: "${part}" is not kind=count with kind one of ${faultKinds.join(', ')}`,
      )
    }
    mix[kind as FaultKind] = Number(count)
  }
  return mix
}

/** `depin up`'s flags as the stations' options, checked before anything starts. */
export function stationOptionsOf(flags: {
  faults?: string
  transport?: 'mqtt' | 'http'
  size: number
}): EnvironmentSimulationOptions {
  const faults = parseFaultMix(flags.faults ?? 'none')
  const faulty = Object.values(faults).reduce((sum, n) => sum + n, 0)
  if (faulty > flags.size) {
    throw new ConfigError(
      'FAULTS_INVALID',
      `--faults asks for ${faulty} faulty stations of ${flags.size}: lower it (e.g. --faults liar=1, or --faults none)`,
    )
  }
  return { faults, ...(flags.transport ? { transport: flags.transport } : {}) }
}
