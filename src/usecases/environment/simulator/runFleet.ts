import type { Address } from 'viem'
import { depinDomain, readingTypes } from '../../../chain/typedData.ts'
import { createDevice, type Device } from '../../../device/createDevice.ts'
import { createVerdictVerifier, type DeviceTransportEvent } from '../../../device/createVerdictVerifier.ts'
import { type GatewayList, openGatewayList } from '../../../device/openGatewayList.ts'
import { MAX_READINGS_PER_REQUEST, type ReadingTransport, transportOf } from '../../../device/postReadings.ts'
import type { SignedReading } from '../../../readings/reading.ts'
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
  /** Where the stations' sequence counters live, so a restarted fleet never reuses a number (default: memory). */
  stateDir?: string
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
 * its key with its next sequence number, posted as one batch (requests of at most 500). The
 * first tick starts at once. Send-time faults: `clockSkew` stamps its readings ahead, `forged`
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
  if (!(intervalSeconds > 0)) throw new RangeError(`intervalSeconds must be > 0, got ${intervalSeconds}`)
  const clock = parameters.clock ?? (() => BigInt(Math.floor(Date.now() / 1000)))
  const devices: Device[] = fleet.stations.map((station) =>
    createDevice({
      account: station.account,
      chainId,
      deviceRegistry,
      transport,
      blueprint: fleet.blueprint,
      deviceClass: fleet.deviceClass.id,
      ...(stateDir !== undefined ? { stateDir } : {}),
    }),
  )
  const domain = depinDomain(chainId, deviceRegistry)
  /** The last reading the gateway accepted, per replaying station. */
  const lastAccepted = new Map<number, SignedReading>()
  const has = (station: Station, kind: string) => station.faults.some((f) => f.kind === kind)
  const skewOf = (station: Station) =>
    station.faults.reduce((sum, f) => (f.kind === 'clockSkew' ? sum + (f.seconds ?? 3_600n) : sum), 0n)

  async function tick(index: number, time: bigint): Promise<FleetBatch> {
    const readings: SignedReading[] = []
    const owners: number[] = [] // station index of each fresh reading; -1 for a replayed one
    for (const { station, values } of fleet.readingsAt(time)) {
      const device = devices[station.index] as Device
      let reading = await device.sign({ time: time + skewOf(station), values })
      if (station.impostor?.signTypedData) {
        const { signature: _, ...message } = reading
        reading = {
          ...reading,
          signature: await station.impostor.signTypedData({
            domain,
            types: readingTypes,
            primaryType: 'Reading',
            message,
          }),
        }
      }
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
      await loop
    },
  }
}
