import { isValidCell } from 'h3-js'
import type { Account, Hash, Hex } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { getContracts } from '../chain/getContracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { depinDomain, deviceRegistrationTypes } from '../chain/typedData.ts'
import { ConfigError } from '../errors.ts'

export type RegisterDeviceParameters = {
  /** The owner's clients: the owner's wallet sends, and pays for, the registration. */
  clients: ChainClients
  deployment: Deployment
  /** The device key: it signs the proof of possession, nothing is sent from it. */
  deviceAccount: Account
  deviceClass: number
  /** The device's H3 cell: an index as a bigint, or its hex string (`'881f1d4887fffff'`). */
  h3Cell: bigint | string
  /** A registered maker's `MakerAttestation(device, deviceClass)`, for classes that require one. */
  makerSignature?: Hex
}

export type RegisterDeviceReturnType = Hash

/**
 * Registers a device under the owner of `clients`. The device key signs
 * `DeviceRegistration(owner, deviceClass)` in the DeviceRegistry's domain (its proof of
 * possession, bound to this chain, registry, owner and class); the owner's wallet sends
 * `register()` and this waits until it is mined. Fails with `TRANSACTION_REVERTED` if it reverts.
 * @returns the transaction hash
 * @example
 * const hash = await registerDevice({ clients: owner, deployment, deviceAccount: loadDeviceKey('device.key'),
 *   deviceClass: 1, h3Cell: latLngToCell(52.52, 13.405, 8) })
 */
export async function registerDevice(
  parameters: RegisterDeviceParameters,
): Promise<RegisterDeviceReturnType> {
  const { clients, deployment, deviceAccount, deviceClass } = parameters
  const owner = ownerOf(clients, deployment, 'registering a device')
  if (!deviceAccount.signTypedData) {
    throw new ConfigError(
      'ACCOUNT_CANNOT_SIGN',
      `device account ${deviceAccount.address} cannot sign typed data`,
    )
  }
  const h3Cell = toCellIndex(parameters.h3Cell)
  const deviceSignature = await deviceAccount.signTypedData({
    domain: depinDomain(deployment.chainId, deployment.contracts.deviceRegistry),
    types: deviceRegistrationTypes,
    primaryType: 'DeviceRegistration',
    message: { owner: owner.address, deviceClass },
  })
  const { deviceRegistry } = getContracts(clients, deployment)
  const receipt = await sendTransaction(
    clients.publicClient,
    deviceRegistry.write.register([
      deviceAccount.address,
      deviceClass,
      h3Cell,
      deviceSignature,
      parameters.makerSignature ?? '0x',
    ]),
    `registering device ${deviceAccount.address}`,
  )
  return receipt.transactionHash
}

/**
 * The owner whose wallet sends a registration, once the clients can sign (`SIGNER_MISSING`) and
 * are on the deployment's chain (`CHAIN_MISMATCH`).
 */
export function ownerOf(clients: ChainClients, deployment: Deployment, what: string): Account {
  const owner = clients.account
  if (!owner || !clients.walletClient)
    throw new ConfigError('SIGNER_MISSING', `${what} needs the owner’s private key`)
  if (deployment.chainId !== clients.chain.id) {
    throw new ConfigError(
      'CHAIN_MISMATCH',
      `the deployment is on chain ${deployment.chainId}, the clients on chain ${clients.chain.id}`,
    )
  }
  return owner
}

/** An H3 cell index as the registry stores it (uint64), checked before any transaction. */
export function toCellIndex(cell: bigint | string): bigint {
  const hex = typeof cell === 'bigint' ? cell.toString(16) : cell.replace(/^0x/i, '').toLowerCase()
  if (!/^[0-9a-f]{1,16}$/.test(hex) || !isValidCell(hex)) {
    throw new ConfigError(
      'H3_CELL_INVALID',
      `${typeof cell === 'bigint' ? `0x${hex}` : cell} is not a valid H3 cell`,
    )
  }
  return BigInt(`0x${hex}`)
}
