/**
 * One shard of a fuzz run: its own servers (a gateway with its MQTT broker, an API, a report
 * exchange) on 127.0.0.1, its own seed and share of the inputs. `npm run fuzz` runs one per core
 * as child processes and adds up their figures.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { startApiFixture } from './apiTarget.ts'
import { createDecoderFixture } from './decoderTarget.ts'
import { startExchangeFixture } from './exchangeTarget.ts'
import { startGatewayFixture } from './gatewayTarget.ts'
import { startRecordsFixture } from './recordsTarget.ts'
import { createTally, type Figure, type Offender, TARGETS, type Target } from './tally.ts'

/** Share of the inputs each target gets. */
export const SHARES: Record<Target, number> = {
  'gateway-http': 0.25,
  'gateway-mqtt': 0.1,
  'gateway-records': 0.1,
  api: 0.2,
  exchange: 0.12,
  decoder: 0.23,
}

export type ShardOptions = {
  inputs: number
  seed: number
  /** Seconds after the run started (not the shard) when no new input is taken. */
  deadline: number
  inProcess: number
  sockets: number
  only: readonly Target[]
}

/** What a shard counted, in a form that crosses a process boundary. */
export type ShardResult = {
  inputs: Record<Target, number>
  figures: Record<Figure, number>
  notes: Record<Target, [string, number][]>
  offenders: Offender[]
  seconds: number
  stoppedByTime: boolean
}

export type ShardProgress = Pick<ShardResult, 'inputs' | 'figures'>

/** Runs a shard to its end; `onProgress` is told the counts every few seconds. */
export async function runShard(
  options: ShardOptions,
  onProgress: (progress: ShardProgress) => void,
): Promise<ShardResult> {
  const tally = createTally()
  const started = performance.now()
  const elapsed = () => (performance.now() - started) / 1000
  const timeUp = () => Date.now() / 1000 > options.deadline

  // a crash anywhere in this process (the servers live in it) is a finding, not the end of the run
  process.on('uncaughtException', (error) =>
    tally.flag(
      'crashes',
      'gateway-http',
      'uncaught exception (anywhere in the process)',
      '(see the stack)',
      error,
    ),
  )
  process.on('unhandledRejection', (error) =>
    tally.flag(
      'crashes',
      'gateway-http',
      'unhandled rejection (anywhere in the process)',
      '(see the stack)',
      error,
    ),
  )

  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'depin-fuzz-'))
  const keccak = await loadKeccak256()
  const common = {
    seed: options.seed,
    tally,
    inProcessShare: options.inProcess,
    sockets: options.sockets,
    keccak,
  }
  const gateway = await startGatewayFixture({ ...common, dir })
  const records = await startRecordsFixture({ ...common, dir })
  const api = await startApiFixture({ ...common, dir })
  const exchange = await startExchangeFixture(common)
  const decoder = createDecoderFixture(common)

  const shareSum = options.only.reduce((sum, t) => sum + SHARES[t], 0)
  const quota = Object.fromEntries(
    TARGETS.map((t) => [
      t,
      options.only.includes(t) ? Math.round((options.inputs * SHARES[t]) / shareSum) : 0,
    ]),
  ) as Record<Target, number>

  /** Runs `workers` loops that each take the next input of `target` until its quota is spent. */
  async function drive(target: Target, workers: number, input: () => Promise<void>) {
    let taken = 0
    const loop = async () => {
      while (taken < quota[target] && !timeUp()) {
        taken++
        tally.input(target)
        try {
          await input()
        } catch (error) {
          tally.flag('crashes', target, 'exception in the input loop', '(see the stack)', error)
        }
      }
    }
    await Promise.all(Array.from({ length: workers }, loop))
  }

  /** The decoder is synchronous: a slice of inputs at a time, then the event loop serves the sockets. */
  async function driveDecoder() {
    while (tally.inputs.decoder < quota.decoder && !timeUp()) {
      const sliceEnd = Math.min(quota.decoder, tally.inputs.decoder + 20)
      while (tally.inputs.decoder < sliceEnd) {
        tally.input('decoder')
        try {
          decoder.input()
        } catch (error) {
          tally.flag('crashes', 'decoder', 'exception in the input loop', '(see the stack)', error)
        }
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  const snapshot = (): ShardProgress => ({ inputs: { ...tally.inputs }, figures: { ...tally.figures } })
  const progress = setInterval(() => onProgress(snapshot()), 1_000)
  await Promise.all([
    drive('gateway-http', options.sockets, gateway.httpInput),
    drive('gateway-mqtt', 32, gateway.mqttInput),
    drive('gateway-records', options.sockets, records.input),
    drive('api', options.sockets, api.input),
    drive('exchange', options.sockets, exchange.input),
    driveDecoder(),
  ])
  const seconds = elapsed()
  const stoppedByTime = TARGETS.some((t) => tally.inputs[t] < quota[t])
  clearInterval(progress)

  await gateway.finish()
  await records.finish()
  await api.finish()
  await exchange.finish()
  await gateway.stop()
  await records.stop()
  await api.stop()
  await exchange.stop()
  rmSync(dir, { recursive: true, force: true })
  return {
    ...snapshot(),
    notes: Object.fromEntries(TARGETS.map((t) => [t, [...tally.notes[t]]])) as Record<
      Target,
      [string, number][]
    >,
    offenders: tally.offenders,
    seconds,
    stoppedByTime,
  }
}
