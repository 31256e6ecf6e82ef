import { type Address, BaseError, ContractFunctionRevertedError, type Hash, type Hex } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { getContracts } from '../chain/getContracts.ts'
import { ChainError } from '../errors.ts'
import { ownerOf, toCellIndex } from './registerDevice.ts'

/** One device of a batch: register's arguments, its proof of possession signed already. */
export type DeviceRegistration = {
  device: Address
  deviceClass: number
  /** An index as a bigint, or its hex string. */
  h3Cell: bigint | string
  /** The device key's signature of `DeviceRegistration(owner, deviceClass)`, owner = the sender. */
  deviceSignature: Hex
  makerSignature?: Hex
}

export type RegisterDevicesParameters = {
  /** The owner's clients: the owner's wallet sends, and pays for, every registration. */
  clients: ChainClients
  deployment: Deployment
  registrations: readonly DeviceRegistration[]
  /** Devices per transaction (default 100: ≈ 6 M gas, a fifth of a 30 M block). */
  perTransaction?: number
  /** Called as each transaction is mined, with the devices it registered. */
  onMined?: (mined: { hash: Hash; devices: Address[] }) => void
}

/**
 * Registers many devices under the owner of `clients`: `DeviceRegistry.registerMany`, a
 * transaction per `perTransaction` devices, all sent before the first is waited for (the owner's
 * nonces in order), so a fleet onboards at hundreds of devices a second instead of one per
 * block. Each device still proves possession of its key. Fails, once every batch sent was mined,
 * with `TRANSACTION_REVERTED` naming the first batch that failed (a device registered already, a
 * bad proof: refused when its gas was estimated, or mined and reverted): that whole batch is left
 * out, the others stand.
 * @returns each transaction's hash and the devices it registered, in order
 */
export async function registerDevices(
  parameters: RegisterDevicesParameters,
): Promise<{ hash: Hash; devices: Address[] }[]> {
  const { clients, deployment, registrations } = parameters
  const perTransaction = parameters.perTransaction ?? 100
  if (!Number.isInteger(perTransaction) || perTransaction < 1)
    throw new RangeError(`perTransaction must be a positive integer: ${perTransaction}`)
  const account = ownerOf(clients, deployment, 'registering devices').address
  // every cell checked before anything is sent
  const all = registrations.map((r) => ({
    device: r.device,
    deviceClass: r.deviceClass,
    h3Cell: toCellIndex(r.h3Cell),
    deviceSignature: r.deviceSignature,
    makerSignature: r.makerSignature ?? ('0x' as Hex),
  }))
  const { deviceRegistry } = getContracts(clients, deployment)
  const sent: { hash: Hash; devices: Address[] }[] = []
  let reverted: ChainError | undefined
  const failed = (
    devices: readonly Address[],
    why: string,
    details: Record<string, unknown>,
    cause?: unknown,
  ) => {
    reverted ??= new ChainError(
      'TRANSACTION_REVERTED',
      `registering ${devices.length} devices (${devices[0]} …) reverted: ${why}`,
      { details, cause },
    )
  }
  let nonce = await clients.publicClient.getTransactionCount({ address: account, blockTag: 'pending' })
  for (let start = 0; start < all.length; start += perTransaction) {
    const batch = all.slice(start, start + perTransaction)
    const devices = batch.map((r) => r.device)
    try {
      // nonces counted here: the node's pending count may lag transactions sent a moment ago
      const hash = await deviceRegistry.write.registerMany([batch], { nonce })
      nonce++
      sent.push({ hash, devices })
    } catch (error) {
      // refused when its gas was estimated (a device registered already, a bad proof): nothing
      // sent for this batch, its nonce goes to the next one
      if (!(error instanceof BaseError)) throw error
      const revert = error.walk((e) => e instanceof ContractFunctionRevertedError)
      const data = revert instanceof ContractFunctionRevertedError ? revert.data : undefined
      failed(
        devices,
        data ? `${data.errorName}(${(data.args ?? []).join(', ')})` : error.shortMessage,
        {},
        error,
      )
    }
  }
  for (const transaction of sent) {
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash: transaction.hash })
    if (receipt.status !== 'success') {
      failed(transaction.devices, 'mined and reverted', { hash: transaction.hash })
      continue
    }
    parameters.onMined?.(transaction)
  }
  if (reverted) throw reverted
  return sent
}
