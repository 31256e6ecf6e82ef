import type { Account, Address, Hex } from 'viem'
import { depinDomain, readingTypes } from '../chain/typedData.ts'
import { DepinError } from '../errors.ts'
import type { Reading, SignedReading } from './reading.ts'

export type SignReadingParameters = {
  /** The device key (its address is the device id). */
  account: Account
  chainId: number
  deviceRegistry: Address
  seq: bigint
  time: bigint
  values: bigint[]
}

/**
 * Signs a reading as EIP-712 typed data with the device key.
 * @example
 * const reading = await signReading({ account: deviceKey, chainId, deviceRegistry, seq: 1n, time: 1764200000n, values: [2150n, 5520n, 123n, 10132n] })
 */
export async function signReading(parameters: SignReadingParameters): Promise<SignedReading> {
  const { account, chainId, deviceRegistry } = parameters
  if (!account.signTypedData)
    throw new DepinError('ACCOUNT_CANNOT_SIGN', `account ${account.address} cannot sign`)
  const reading: Reading = {
    device: account.address,
    seq: parameters.seq,
    time: parameters.time,
    values: parameters.values,
  }
  const signature: Hex = await account.signTypedData({
    domain: depinDomain(chainId, deviceRegistry),
    types: readingTypes,
    primaryType: 'Reading',
    message: reading,
  })
  return { ...reading, signature }
}
