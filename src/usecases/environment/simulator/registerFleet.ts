import { type Address, type Hash, hashTypedData, hexToBytes } from 'viem'
import type { ChainClients } from '../../../chain/createChainClients.ts'
import type { Deployment } from '../../../chain/deployment.ts'
import { getReadOnlyContracts } from '../../../chain/getContracts.ts'
import { depinDomain, deviceRegistrationTypes } from '../../../chain/typedData.ts'
import { createDigestSignerPool } from '../../../device/createDigestSignerPool.ts'
import { registerDevices } from '../../../device/registerDevices.ts'
import { ConfigError } from '../../../errors.ts'
import type { Fleet, Station } from './createFleet.ts'

export type RegisterFleetParameters = {
  fleet: Fleet
  /** Owners' clients; station i is registered by owner i mod n. */
  ownerClients: readonly ChainClients[]
  deployment: Deployment
  /** Called for each station, as its registration is mined (or found done). */
  onProgress?: (outcome: RegisterFleetOutcome) => void
  /** Devices per transaction (default 100). */
  perTransaction?: number
}

export type RegisterFleetOutcome =
  | { type: 'registered'; station: number; device: Address; owner: Address; hash: Hash }
  /** Already on-chain (a fleet's keys follow from its seed, so a restarted fleet finds its stations). */
  | { type: 'skipped'; station: number; device: Address; status: 'active' | 'retired' }

export type RegisterFleetReturnType = RegisterFleetOutcome[]

/** Devices whose status one `statusesOf` call reads. */
const STATUS_CHUNK = 1_000

/**
 * Registers every station of a fleet in its H3 cell and class, owners taken round-robin:
 * `DeviceRegistry.registerMany`, `perTransaction` stations a transaction, every owner's
 * transactions sent before any is waited for, the stations' proofs of possession signed on worker
 * threads (libsecp256k1). Stations already registered are skipped (read in one call per thousand),
 * so it can run again after a restart. Outcomes come in station order.
 */
export async function registerFleet({
  fleet,
  ownerClients,
  deployment,
  onProgress,
  perTransaction,
}: RegisterFleetParameters): Promise<RegisterFleetReturnType> {
  const first = ownerClients[0]
  if (!first) throw new ConfigError('OWNERS_MISSING', 'registering a fleet needs at least one owner')
  const { deviceRegistry } = getReadOnlyContracts(first, deployment)
  const outcomes: (RegisterFleetOutcome | undefined)[] = Array(fleet.stations.length)
  const ownerOf = (station: Station) => ownerClients[station.index % ownerClients.length] as ChainClients

  const unregistered: Station[] = []
  for (let start = 0; start < fleet.stations.length; start += STATUS_CHUNK) {
    const chunk = fleet.stations.slice(start, start + STATUS_CHUNK)
    const statuses = await deviceRegistry.read.statusesOf([chunk.map((s) => s.account.address)])
    for (const [i, station] of chunk.entries()) {
      const status = statuses[i] as number
      if (status === 0) {
        unregistered.push(station)
        continue
      }
      const outcome: RegisterFleetOutcome = {
        type: 'skipped',
        station: station.index,
        device: station.account.address,
        status: status === 1 ? 'active' : 'retired',
      }
      outcomes[station.index] = outcome
      onProgress?.(outcome)
    }
  }

  if (unregistered.length > 0) {
    // each station's proof of possession: DeviceRegistration(owner, deviceClass) by its own key
    const domain = depinDomain(deployment.chainId, deployment.contracts.deviceRegistry)
    const signer = createDigestSignerPool({ keys: unregistered.map((s) => s.privateKey) })
    let signatures: `0x${string}`[]
    try {
      signatures = await signer.sign(
        unregistered.map((station) =>
          hexToBytes(
            hashTypedData({
              domain,
              types: deviceRegistrationTypes,
              primaryType: 'DeviceRegistration',
              message: {
                owner: ownerOf(station).account?.address as Address,
                deviceClass: fleet.deviceClass.id,
              },
            }),
          ),
        ),
        unregistered.map((_, i) => i),
      )
    } finally {
      await signer.close()
    }
    const byOwner = new Map<ChainClients, { station: Station; signature: `0x${string}` }[]>()
    unregistered.forEach((station, i) => {
      const owner = ownerOf(station)
      const list = byOwner.get(owner) ?? []
      list.push({ station, signature: signatures[i] as `0x${string}` })
      byOwner.set(owner, list)
    })
    const stationOf = new Map(unregistered.map((s) => [s.account.address, s]))
    // owners side by side, each with its transactions in nonce order
    await Promise.all(
      [...byOwner].map(([clients, list]) =>
        registerDevices({
          clients,
          deployment,
          registrations: list.map(({ station, signature }) => ({
            device: station.account.address,
            deviceClass: fleet.deviceClass.id,
            h3Cell: station.h3Cell,
            deviceSignature: signature,
          })),
          ...(perTransaction !== undefined ? { perTransaction } : {}),
          onMined: ({ hash, devices }) => {
            for (const device of devices) {
              const station = stationOf.get(device) as Station
              const outcome: RegisterFleetOutcome = {
                type: 'registered',
                station: station.index,
                device,
                owner: clients.account?.address as Address,
                hash,
              }
              outcomes[station.index] = outcome
              onProgress?.(outcome)
            }
          },
        }),
      ),
    )
  }
  return outcomes as RegisterFleetOutcome[]
}
