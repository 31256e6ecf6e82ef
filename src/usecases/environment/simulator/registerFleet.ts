import type { Address, Hash } from 'viem'
import type { ChainClients } from '../../../chain/createChainClients.ts'
import type { Deployment } from '../../../chain/deployment.ts'
import { getReadOnlyContracts } from '../../../chain/getContracts.ts'
import { registerDevice } from '../../../device/registerDevice.ts'
import { ConfigError } from '../../../errors.ts'
import type { Fleet } from './createFleet.ts'

export type RegisterFleetParameters = {
  fleet: Fleet
  /** Owners' clients; station i is registered by owner i mod n. */
  ownerClients: readonly ChainClients[]
  deployment: Deployment
  /** Called after each station. */
  onProgress?: (outcome: RegisterFleetOutcome) => void
}

export type RegisterFleetOutcome =
  | { type: 'registered'; station: number; device: Address; owner: Address; hash: Hash }
  /** Already on-chain (a fleet's keys follow from its seed, so a restarted fleet finds its stations). */
  | { type: 'skipped'; station: number; device: Address; owner: Address; status: 'active' | 'retired' }

export type RegisterFleetReturnType = RegisterFleetOutcome[]

/**
 * Registers every station of a fleet in its H3 cell and class, owners taken round-robin, one
 * transaction at a time (each mined before the next). Stations already registered are skipped,
 * so it can run again after a restart.
 */
export async function registerFleet({
  fleet,
  ownerClients,
  deployment,
  onProgress,
}: RegisterFleetParameters): Promise<RegisterFleetReturnType> {
  const first = ownerClients[0]
  if (!first) throw new ConfigError('OWNERS_MISSING', 'registering a fleet needs at least one owner')
  const { deviceRegistry } = getReadOnlyContracts(first, deployment)
  const outcomes: RegisterFleetOutcome[] = []
  for (const station of fleet.stations) {
    const clients = ownerClients[station.index % ownerClients.length] as ChainClients
    const device = station.account.address
    const record = await deviceRegistry.read.getDevice([device])
    let outcome: RegisterFleetOutcome
    if (record.status !== 0) {
      outcome = {
        type: 'skipped',
        station: station.index,
        device,
        owner: record.owner,
        status: record.status === 1 ? 'active' : 'retired',
      }
    } else {
      const hash = await registerDevice({
        clients,
        deployment,
        deviceAccount: station.account,
        deviceClass: fleet.deviceClass.id,
        h3Cell: station.h3Cell,
      })
      outcome = {
        type: 'registered',
        station: station.index,
        device,
        owner: clients.account?.address as Address,
        hash,
      }
    }
    outcomes.push(outcome)
    onProgress?.(outcome)
  }
  return outcomes
}
