import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Address, Hex } from 'viem'
import { createDigestSignerPool } from '../../../device/createDigestSignerPool.ts'
import { createVerdictVerifier, type DeviceTransportEvent } from '../../../device/createVerdictVerifier.ts'
import { type GatewayList, openGatewayList } from '../../../device/openGatewayList.ts'
import { openSequenceCounter } from '../../../device/openSequenceCounter.ts'
import { MAX_READINGS_PER_REQUEST, type ReadingTransport, transportOf } from '../../../device/postReadings.ts'
import { createReadingHasher } from '../../../readings/createReadingHasher.ts'
import type { Reading, SignedReading } from '../../../readings/reading.ts'
import type { Fleet, Station } from './createFleet.ts'

export type RunFleetParameters = {
  fleet: Fleet
  /** Base URL of the gateway, to send over HTTP. */
  gatewayUrl?: string
  /**
   * Over HTTP: the gateways whose signed verdicts count, e.g. `openGatewayList({ addresses:
   * [gatewayId] })` for the network the fleet runs in. Default: none, so no answer counts and
   * every tick is reported `failed` (the readings still reach the gateway).
   */
  gateways?: GatewayList
  /** Over HTTP: told of each answer ignored (no listed gateway's verdict on the request). */
  onEvent?: (event: DeviceTransportEvent) => void
  /**
   * How the fleet's readings reach the gateway instead of HTTP to `gatewayUrl` (e.g. MQTT, with
   * its own verdict check).
   */
  transport?: ReadingTransport
  chainId: number
  deviceRegistry: Address
  /** Seconds between ticks; each tick sends one reading per station. */
  intervalSeconds: number
  /** Unix seconds of a tick (default: the system clock). */
  clock?: () => bigint
  /** Called after each tick with what was sent and what the gateway said. */
  onBatch?: (batch: FleetBatch) => void
  /**
   * Where the fleet's sequence counter lives (`fleet.seq`, one durable write per tick), so a
   * restarted fleet never reuses a number (default: memory).
   */
  stateDir?: string
  /** Worker threads signing the readings with libsecp256k1 (default: one per core, at most 4). */
  signingThreads?: number
  /** Milliseconds before a request to the gateway counts as failed (default 10 000). */
  timeoutMs?: number
}

/** One tick of a running fleet. */
export type FleetBatch = {
  /** 0 for the first tick. */
  tick: number
  time: bigint
  /** Everything sent this tick, faults included (a replaying station adds an old reading after its new one). */
  readings: SignedReading[]
  accepted: number
  /** The gateway's refusals, reading by reading. */
  rejections: Array<{ reading: SignedReading; reason: string; message: string }>
  /**
   * Readings no listed gateway answered for with a signed verdict (unreachable, 5xx, forged or
   * unsigned answers): dropped, never resent.
   */
  failed: number
  /** Why requests (or the tick itself) failed. */
  errors: string[]
}

export type RunFleetReturnType = {
  /** Stops after the tick in progress; rejects with the error if `onBatch` threw (which ends the run). */
  stop(): Promise<void>
}

/**
 * Runs a fleet against a gateway: every `intervalSeconds`, one reading per station, signed by
 * its key, posted as one batch (requests of at most 500). The first tick starts at once. Every
 * station's reading of a tick carries the tick's number (a fleet-wide counter, durable under
 * `stateDir`, above any a station's own counter of an older depin handed out), and is signed on
 * worker threads with libsecp256k1 (what viem's signTypedData gives, bit for bit; a thousand
 * times fewer milliseconds for a fleet of thousands). Send-time faults: `clockSkew` stamps its readings ahead, `forged`
 * has another key sign them, `replay` also re-sends, after its new one, its previous reading the gateway accepted.
 * Unlike a `createDevice` agent the fleet keeps no offline queue: a tick the gateway does not
 * answer is reported and dropped. Verdicts count only when a listed gateway signed them (the
 * transport's check; over HTTP, `gateways`), so `accepted`, `rejections` and the replay fault's
 * memory of accepted readings are what a gateway stands behind.
 * @example
 * const run = runFleet({ fleet, gatewayUrl, chainId, deviceRegistry, intervalSeconds: 5, onBatch: (b) => console.log(b.accepted) })
 * // …
 * await run.stop()
 */
export function runFleet(parameters: RunFleetParameters): RunFleetReturnType {
  const { fleet, gatewayUrl, chainId, deviceRegistry, intervalSeconds, onBatch, stateDir, timeoutMs } =
    parameters
  if (!(intervalSeconds > 0)) throw new RangeError(`intervalSeconds must be > 0, got ${intervalSeconds}`)
  const transport = transportOf({
    transport: parameters.transport,
    gatewayUrl,
    timeoutMs,
    verifier: createVerdictVerifier({
      chainId,
      deviceRegistry,
      gateways: parameters.gateways ?? openGatewayList({ addresses: [] }),
    }),
    onEvent: parameters.onEvent,
  })
  const clock = parameters.clock ?? (() => BigInt(Math.floor(Date.now() / 1000)))
  if (stateDir !== undefined) mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  const counter = openSequenceCounter(stateDir === undefined ? undefined : join(stateDir, 'fleet.seq'), {
    atLeast: legacyCounters(stateDir, fleet),
  })
  // key i signs as station i; the impostors' keys follow, for the forged fault
  const impostors = fleet.stations.filter((s) => s.impostorKey !== undefined)
  const impostorIndex = new Map(impostors.map((s, i) => [s.index, fleet.stations.length + i]))
  const signer = createDigestSignerPool({
    keys: [...fleet.stations.map((s) => s.privateKey), ...impostors.map((s) => s.impostorKey as Hex)],
    ...(parameters.signingThreads !== undefined ? { threads: parameters.signingThreads } : {}),
  })
  const hashing = createReadingHasher(chainId, deviceRegistry)
  /** The last reading the gateway accepted, per replaying station. */
  const lastAccepted = new Map<number, SignedReading>()
  const has = (station: Station, kind: string) => station.faults.some((f) => f.kind === kind)
  const skewOf = (station: Station) =>
    station.faults.reduce((sum, f) => (f.kind === 'clockSkew' ? sum + (f.seconds ?? 3_600n) : sum), 0n)

  async function tick(index: number, time: bigint): Promise<FleetBatch> {
    const hash = await hashing
    const seq = counter.next() // durable before anything is signed with it
    const fresh: { station: Station; reading: Reading }[] = fleet
      .readingsAt(time)
      .map(({ station, values }) => ({
        station,
        reading: { device: station.account.address, seq, time: time + skewOf(station), values },
      }))
    const signatures = await signer.sign(
      fresh.map(({ reading }) => hash(reading)),
      fresh.map(({ station }) => impostorIndex.get(station.index) ?? station.index),
    )
    const readings: SignedReading[] = []
    const owners: number[] = [] // station index of each fresh reading; -1 for a replayed one
    for (const [i, { station, reading: unsigned }] of fresh.entries()) {
      const reading: SignedReading = { ...unsigned, signature: signatures[i] as Hex }
      readings.push(reading)
      owners.push(station.index)
      // after its new reading, so the old one is below the gateway's last accepted: a replay,
      // not a duplicate of the last accepted reading (which the gateway acknowledges again)
      const old = has(station, 'replay') ? lastAccepted.get(station.index) : undefined
      if (old) {
        readings.push(old)
        owners.push(-1)
      }
    }
    const batch: FleetBatch = {
      tick: index,
      time,
      readings,
      accepted: 0,
      rejections: [],
      failed: 0,
      errors: [],
    }
    for (let start = 0; start < readings.length; start += MAX_READINGS_PER_REQUEST) {
      const chunk = readings.slice(start, start + MAX_READINGS_PER_REQUEST)
      const answer = await transport.send(chunk)
      if (answer.type !== 'answered') {
        batch.failed += chunk.length
        batch.errors.push(answer.message)
        continue
      }
      chunk.forEach((reading, i) => {
        const result = answer.results[i]
        if (result?.status === 'rejected') {
          batch.rejections.push({ reading, reason: result.reason, message: result.message })
          return
        }
        batch.accepted++
        const station = fleet.stations[owners[start + i] as number]
        if (station && has(station, 'replay')) lastAccepted.set(station.index, reading)
      })
    }
    return batch
  }

  let stopped = false
  let wake: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const intervalMs = intervalSeconds * 1000
  const loop = (async () => {
    let nextAt = Date.now()
    for (let index = 0; !stopped; index++) {
      const time = clock()
      let batch: FleetBatch
      try {
        batch = await tick(index, time)
      } catch (error) {
        // a failing tick (a state file that cannot be written…) is reported; the fleet keeps going
        const message = error instanceof Error ? error.message : String(error)
        batch = { tick: index, time, readings: [], accepted: 0, rejections: [], failed: 0, errors: [message] }
      }
      onBatch?.(batch)
      nextAt = Math.max(nextAt + intervalMs, Date.now())
      await new Promise<void>((resolve) => {
        wake = resolve
        timer = setTimeout(resolve, nextAt - Date.now())
      })
    }
  })()
  loop.catch(() => {}) // surfaced by stop(); never an unhandled rejection that kills the process
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      wake?.()
      try {
        await loop
      } finally {
        await signer.close()
      }
    },
  }
}

/**
 * The highest number the fleet's stations' own counters (`<address>.seq`, written by depin
 * before the fleet-wide counter) handed out, for a state dir that has no `fleet.seq` yet.
 */
function legacyCounters(stateDir: string | undefined, fleet: Fleet): bigint {
  if (stateDir === undefined || existsSync(join(stateDir, 'fleet.seq'))) return 0n
  const ours = new Set(fleet.stations.map((s) => `${s.account.address}.seq`))
  let highest = 0n
  for (const name of readdirSync(stateDir)) {
    if (!ours.has(name)) continue
    const text = readFileSync(join(stateDir, name), 'utf8').trim()
    if (/^\d{1,20}$/.test(text) && BigInt(text) > highest) highest = BigInt(text)
  }
  return highest
}
