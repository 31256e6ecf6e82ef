import { join } from 'node:path'
import { createMqttTransport } from '../../../device/createMqttTransport.ts'
import { createVerdictVerifier } from '../../../device/createVerdictVerifier.ts'
import { openGatewayList } from '../../../device/openGatewayList.ts'
import { httpTransport, type ReadingTransport } from '../../../device/postReadings.ts'
import type { SimulationContext } from '../../useCase.ts'
import { createFleet } from './createFleet.ts'
import { registerFleet } from './registerFleet.ts'
import { runFleet } from './runFleet.ts'
import type { EnvironmentSimulationOptions } from './stationOptions.ts'

/**
 * The environment's simulated weather stations for `depin up`: deterministic from the seed, so a
 * restart brings back the same stations (their sequence counter under stateDir/fleet).
 */
export async function simulateStations(context: SimulationContext): Promise<{ stop(): Promise<void> }> {
  const { blueprint, deployment, log } = context
  const options = (context.options ?? {}) as EnvironmentSimulationOptions
  const fleet =
    options.fleet ??
    createFleet({
      size: context.size ?? 50,
      blueprint,
      seed: context.seed ?? 1,
      ...(options.faults ? { faults: options.faults } : {}),
    })
  // a progress line at most every 2 s while a big fleet registers, and its rate at the end
  const started = Date.now()
  let done = 0
  let newly = 0
  let said = started
  const total = fleet.stations.length
  if (total >= 1_000) log(`fleet: registering ${total.toLocaleString('en-US')} stations in batches…`)
  const perSecond = () => Math.round((newly * 1000) / Math.max(1, Date.now() - started))
  await registerFleet({
    fleet,
    ownerClients: context.ownerClients,
    deployment,
    onProgress: (outcome) => {
      done++
      if (outcome.type === 'registered') newly++
      if (done === 1) said = Date.now() // the first line once some have been mined a while
      if (Date.now() - said < 2_000 || done === total) return
      said = Date.now()
      log(
        `fleet: registering: ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} stations (${perSecond()}/s)`,
      )
    },
  })
  log(
    `fleet: ${total.toLocaleString('en-US')} stations (${newly.toLocaleString('en-US')} newly registered${newly > 0 ? `, ${perSecond()}/s` : ''}) owned by ${context.ownerClients.length} accounts`,
  )
  await context.syncRegistry()
  // the fleet believes the verdicts of this network's gateway, whose address it knows
  const verifier = createVerdictVerifier({
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    gateways: openGatewayList({ addresses: [context.gatewayAddress] }),
  })
  const stopping: (() => Promise<void>)[] = []
  let transport: ReadingTransport = httpTransport({ gatewayUrl: context.gatewayUrl, verifier })
  const overMqtt = (options.transport ?? 'mqtt') === 'mqtt'
  if (overMqtt) {
    const mqttTransport = createMqttTransport({ brokerUrl: context.mqttUrl, verifier })
    stopping.push(() => mqttTransport.close())
    transport = mqttTransport
  }
  log(
    overMqtt
      ? `fleet sends its readings over MQTT through ${context.mqttUrl}`
      : `fleet sends its readings over HTTP to ${context.gatewayUrl}`,
  )
  const running = runFleet({
    fleet,
    transport,
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    stateDir: join(context.stateDir, 'fleet'),
    ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    intervalSeconds:
      options.intervalSeconds ?? Number(blueprint.deviceClasses[0]?.quality?.minIntervalSeconds ?? 5n) + 1,
  })
  stopping.unshift(() => running.stop())
  return {
    stop: async () => {
      for (const stop of stopping) await stop()
    },
  }
}
