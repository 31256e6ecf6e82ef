/**
 * The soak's load: every station of a simulated fleet as a device agent (`createDevice`, with
 * its offline queue), half of them posting over HTTP, half publishing through the MQTT broker.
 * Each signs a reading every `intervalMs` and sends it, queued ones first. Every `accepted`
 * verdict — a listed gateway's signed answer — is recorded, so the soak can look for each one
 * in the stores afterwards.
 */
import type { Address } from 'viem'
import type { Deployment } from '../../src/chain/deployment.ts'
import { createDevice, type Device } from '../../src/device/createDevice.ts'
import { createMqttTransport } from '../../src/device/createMqttTransport.ts'
import { createVerdictVerifier } from '../../src/device/createVerdictVerifier.ts'
import { openGatewayList } from '../../src/device/openGatewayList.ts'
import type { Fleet } from '../../src/usecases/environment/simulator/createFleet.ts'

export type SoakTransport = 'http' | 'mqtt'

export type RunSoakFleetParameters = {
  fleet: Fleet
  deployment: Deployment
  gatewayUrl: string
  /** The gateway operator's address: only its signed verdicts count. */
  gatewayId: Address
  brokerUrl: string
  topicPrefix: string
  intervalMs: number
  /** Milliseconds before a send counts as unanswered and its readings stay queued. */
  timeoutMs: number
}

/** `device:seq` (device lower-case), the key readings are compared by. */
export const readingKey = (device: string, seq: bigint | string) => `${device.toLowerCase()}:${BigInt(seq)}`

/** Starts the load; `stop()` ends the signing, `drain()` then delivers what is still queued. */
export function runSoakFleet(parameters: RunSoakFleetParameters) {
  const { fleet, deployment, intervalMs, timeoutMs } = parameters
  const gateways = openGatewayList({ addresses: [parameters.gatewayId] })
  const verifier = createVerdictVerifier({
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    gateways,
  })
  const mqtt = createMqttTransport({
    brokerUrl: parameters.brokerUrl,
    topicPrefix: parameters.topicPrefix,
    timeoutMs,
    verifier,
  })
  const transportOf = (i: number): SoakTransport => (i % 2 === 0 ? 'http' : 'mqtt')
  const devices: Device[] = fleet.stations.map((station, i) =>
    createDevice({
      account: station.account,
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      blueprint: fleet.blueprint,
      deviceClass: fleet.deviceClass.id,
      ...(transportOf(i) === 'http'
        ? { gatewayUrl: parameters.gatewayUrl, gateways, timeoutMs }
        : { transport: mqtt }),
    }),
  )

  /** Every reading a listed gateway answered `accepted` for, by key, with how it went. */
  const acknowledged = new Map<string, { transport: SoakTransport; epoch: bigint }>()
  /** Readings the gateway refused, by key, with the reason (a resend may meet its own earlier delivery). */
  const refused = new Map<string, string>()
  const errors = new Map<string, number>()
  let signed = 0
  const epochOf = (time: bigint) => (time - deployment.genesisTime) / deployment.epochLength

  const record = (i: number, result: Awaited<ReturnType<Device['send']>>) => {
    for (const outcome of result.outcomes) {
      const key = readingKey(outcome.reading.device, outcome.reading.seq)
      if (outcome.type === 'accepted') {
        acknowledged.set(key, { transport: transportOf(i), epoch: epochOf(outcome.reading.time) })
      } else if (outcome.type === 'rejected') refused.set(key, outcome.reason)
    }
  }
  const countError = (error: unknown) => {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error)
    errors.set(message ?? '', (errors.get(message ?? '') ?? 0) + 1)
  }

  let running = true
  let wake: (() => void)[] = []
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wake = wake.filter((w) => w !== done)
        resolve()
      }
      wake.push(done)
    })
  const loops = devices.map(async (device, i) => {
    // spread the stations over the interval
    await pause((intervalMs * i) / devices.length)
    let nextAt = Date.now()
    while (running) {
      try {
        const now = BigInt(Math.floor(Date.now() / 1000))
        const values = fleet.readingsAt(now)[i]?.values ?? []
        const reading = await device.sign({ time: now, values })
        signed++
        record(i, await device.send([reading]))
      } catch (error) {
        countError(error)
      }
      // the station's measuring rhythm: its next reading is due one interval after the last
      nextAt = Math.max(nextAt + intervalMs, Date.now())
      if (running) await pause(nextAt - Date.now())
    }
  })

  return {
    acknowledged,
    refused,
    errors,
    signed: () => signed,
    queued: () => devices.reduce((sum, d) => sum + d.queued(), 0),
    countBy: (transport: SoakTransport) =>
      [...acknowledged.values()].filter((a) => a.transport === transport).length,
    /** Stops signing new readings; resolves once each station's send in progress is done. */
    async stop() {
      running = false
      for (const w of [...wake]) w()
      await Promise.all(loops)
    },
    /** Sends what is still queued until every queue is empty or the deadline passes; returns what is left. */
    async drain(deadline: number): Promise<number> {
      await Promise.all(
        devices.map(async (device, i) => {
          while (device.queued() > 0 && Date.now() < deadline) {
            try {
              record(i, await device.send([]))
            } catch (error) {
              countError(error)
            }
            if (device.queued() > 0) await pause(500)
          }
        }),
      )
      return devices.reduce((sum, d) => sum + d.queued(), 0)
    },
    close: () => mqtt.close(),
  }
}
export type SoakFleet = ReturnType<typeof runSoakFleet>
