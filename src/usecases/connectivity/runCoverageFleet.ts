/**
 * The connectivity network's simulated hotspots, live: registered on-chain with their asserted
 * cells, then, each epoch, the hotspots the epoch's randomness chose beacon and whoever hears a
 * beacon witnesses it (simulateCoverage.ts), every record signed and sent to the gateway over
 * HTTP before the epoch ends, each hotspot through the shared device SDK (`createDevice`: its
 * offline queue, and only a listed gateway's signed verdict counts). The randomness is read from
 * the chain like the validators read it.
 */
import type { Address, PublicClient } from 'viem'
import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import type { ChainClients } from '../../chain/createChainClients.ts'
import type { Deployment } from '../../chain/deployment.ts'
import { epochRandomness, type SettledReport } from '../../chain/epochRandomness.ts'
import { getReadOnlyContracts } from '../../chain/getContracts.ts'
import { createDevice, type Device } from '../../device/createDevice.ts'
import { openGatewayList } from '../../device/openGatewayList.ts'
import { registerDevice } from '../../device/registerDevice.ts'
import { compareReadings } from '../../gateway/batchFormat.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { Hotspot } from './coverageRules.ts'
import { coverageOf } from './index.ts'
import {
  type CoverageFleet,
  createCoverageFleet,
  signCoverageRecords,
  simulateCoverageEpoch,
} from './simulateCoverage.ts'

export type RunCoverageFleetParameters = {
  blueprint: Blueprint
  deployment: Deployment
  publicClient: PublicClient
  /** Owners' clients: hotspot i is registered by owner i mod n. */
  ownerClients: readonly ChainClients[]
  gatewayUrl: string
  /** The registry as of a time, with registration times (the gateway's indexer). */
  devicesAt(time: bigint): {
    device: Address
    owner: Address
    deviceClass: number
    h3Cell: bigint
    status: 'active' | 'retired'
    registeredAt: bigint
  }[]
  /** The last report settled before a time (the indexer's), for the epoch randomness. */
  lastReportBefore(time: bigint): SettledReport | undefined
  /** Honest hotspots (default 30) and cheaters of each kind (default one of each, a ring of 3). */
  hotspots?: number
  cheaters?: { spoofer?: number; ring?: number; replayer?: number; relayer?: number }
  /** Honest hotspots crammed into one flat (default 4): the density rule's case. */
  flat?: number
  seed?: number
  log?: (line: string) => void
  /** Called with each epoch's records sent, and the gateway's answer. */
  onEpoch?: (sent: {
    epoch: bigint
    beacons: number
    witnesses: number
    accepted: number
    rejected: number
  }) => void
}

/** Hotspots in the flat of the default fleet. */
export const DEFAULT_FLAT = 4

/** Registers the fleet, then simulates and sends each epoch's records until stopped. */
export async function runCoverageFleet(
  parameters: RunCoverageFleetParameters,
): Promise<{ fleet: CoverageFleet; stop(): Promise<void> }> {
  const { blueprint, deployment, publicClient } = parameters
  const log = parameters.log ?? (() => {})
  const seed = parameters.seed ?? 1
  const fleet = createCoverageFleet({
    seed,
    honest: parameters.hotspots ?? 30,
    cheaters: { spoofer: 1, ring: 3, replayer: 1, relayer: 1, ...parameters.cheaters },
    flat: parameters.flat ?? DEFAULT_FLAT,
  })
  const deviceClass = blueprint.deviceClasses[0]?.id ?? 1
  const { deviceRegistry } = getReadOnlyContracts(parameters.ownerClients[0] as ChainClients, deployment)
  let newly = 0
  for (const [i, hotspot] of fleet.hotspots.entries()) {
    const record = await deviceRegistry.read.getDevice([hotspot.account.address])
    if (record.status !== 0) continue
    await registerDevice({
      clients: parameters.ownerClients[i % parameters.ownerClients.length] as ChainClients,
      deployment,
      deviceAccount: hotspot.account,
      deviceClass,
      h3Cell: hotspot.cell,
    })
    newly++
  }
  log(
    `fleet: ${fleet.hotspots.length} hotspots (${newly} newly registered): ${fleet.hotspots.filter((h) => h.kind === 'honest').length} honest, cheaters ${fleet.hotspots
      .filter((h) => h.kind !== 'honest')
      .map((h) => h.name)
      .join(', ')}`,
  )

  // each hotspot's agent: its queue in memory (a record not delivered goes first next epoch, when
  // the gateway refuses it if its epoch is sealed), verdicts believed from listed gateways only
  const gateways = openGatewayList({ publicClient, deviceRegistry: deployment.contracts.deviceRegistry })
  const agents = new Map<string, Device>(
    fleet.hotspots.map((h) => [
      h.account.address.toLowerCase(),
      createDevice({
        account: h.account,
        chainId: deployment.chainId,
        deviceRegistry: deployment.contracts.deviceRegistry,
        gatewayUrl: parameters.gatewayUrl,
        gateways,
        blueprint,
        deviceClass,
        onEvent: (event) => log(`fleet: ${h.name}: ${event.code}: ${event.message}`),
      }),
    ]),
  )

  const { parameters: coverage } = coverageOf(blueprint)
  const network = { chainId: deployment.chainId, deviceRegistry: deployment.contracts.deviceRegistry }
  const { genesisTime, epochLength } = deployment
  /** Records go out this long after the epoch's start: every beacon and witness time has passed. */
  const sendAfter = epochLength - BigInt(blueprint.epochs.sealDelaySeconds) - 5n
  let previous: Awaited<ReturnType<typeof simulateCoverageEpoch>> | undefined
  let next: bigint | undefined
  let stopped = false
  let running: Promise<void> = Promise.resolve()

  async function tick(): Promise<void> {
    const now = (await publicClient.getBlock({ blockTag: 'latest' })).timestamp
    if (now < genesisTime) return
    const current = (now - genesisTime) / epochLength
    next ??= current
    if (next < current) next = current // an epoch gone by unsent stays unsent
    const epochStart = genesisTime + next * epochLength
    if (now < epochStart + sendAfter) return
    const epoch = next
    const randomness = await epochRandomness({
      publicClient,
      deployment,
      rulesHash: blueprint.rulesHash,
      epoch,
      lastReportBefore: parameters.lastReportBefore,
    })
    if (!randomness) return
    // the registry as of the epoch's start: who may beacon (registered before it) and witness
    const hotspots = new Map<string, Hotspot>(
      parameters.devicesAt(epochStart).map((d) => [
        d.device.toLowerCase(),
        {
          device: d.device,
          owner: d.owner,
          cell: d.h3Cell,
          deviceClass: d.deviceClass,
          status: d.status,
          registeredAt: d.registeredAt,
        },
      ]),
    )
    const records = await simulateCoverageEpoch({
      ...network,
      fleet,
      hotspots,
      epoch,
      epochStart,
      randomness: randomness.value,
      beaconShareBps: coverage.beaconShareBps,
      distanceResolution: coverage.distanceResolution,
      spreadSeconds: Math.max(1, Number(sendAfter) - 4),
      seed,
      ...(previous ? { replay: previous } : {}),
    })
    const signed = await signCoverageRecords(fleet, records, network)
    const byHotspot = new Map<string, SignedReading[]>()
    for (const record of signed.sort(compareReadings)) {
      const device = record.device.toLowerCase()
      const own = byHotspot.get(device)
      if (own) own.push(record)
      else byHotspot.set(device, [record])
    }
    const sends = await Promise.all(
      [...byHotspot].map(([device, own]) => (agents.get(device) as Device).send(own)),
    )
    const accepted = sends.reduce((sum, s) => sum + s.accepted, 0)
    const rejected = sends.reduce((sum, s) => sum + s.rejected, 0)
    const queued = sends.reduce((sum, s) => sum + s.queued, 0)
    next = epoch + 1n // sent: on to the next epoch (a failure above tries this one again)
    previous = records
    log(
      `fleet: epoch ${epoch}: ${records.beacons.length} beacons and ${records.witnesses.length} witness records sent, ${accepted} accepted by the gateway, ${rejected} refused${queued > 0 ? `, ${queued} queued (no signed verdict yet)` : ''}`,
    )
    parameters.onEpoch?.({
      epoch,
      beacons: records.beacons.length,
      witnesses: records.witnesses.length,
      accepted,
      rejected,
    })
  }

  const timer = setInterval(() => {
    if (stopped) return
    running = running
      .then(tick)
      .catch((error: unknown) =>
        log(`error SIMULATION_FAILED: fleet: ${error instanceof Error ? error.message : String(error)}`),
      )
  }, 1_000)
  return {
    fleet,
    async stop() {
      stopped = true
      clearInterval(timer)
      await running
    },
  }
}
