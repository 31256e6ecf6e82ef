import type { Account, Address, Hex } from 'viem'
import { depinDomain, readingTypes } from '../chain/typedData.ts'
import { DepinError } from '../errors.ts'
import type { Reading, SignedReading } from './reading.ts'
import { type RecordKind, recordMessage, recordTypes, recordValuesProblem } from './recordKinds.ts'

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

export type SignRecordParameters = SignReadingParameters & {
  /** The use case's record kinds, and the index of this record's kind among them. */
  kinds: readonly RecordKind[]
  kind: number
}

/** Signs a record of any of a use case's kinds as EIP-712 typed data with the device key. */
export async function signRecord(parameters: SignRecordParameters): Promise<SignedReading> {
  const { account, chainId, deviceRegistry } = parameters
  const kind = parameters.kinds[parameters.kind]
  if (!kind) throw new DepinError('RECORD_KIND_UNKNOWN', `no record kind ${parameters.kind}`)
  if (!account.signTypedData)
    throw new DepinError('ACCOUNT_CANNOT_SIGN', `account ${account.address} cannot sign`)
  const problem = recordValuesProblem(kind, parameters.values)
  if (problem) throw new DepinError('READING_INVALID', problem)
  const record: Reading = {
    device: account.address,
    seq: parameters.seq,
    time: parameters.time,
    values: parameters.values,
    ...(parameters.kind > 0 ? { kind: parameters.kind } : {}),
  }
  const signature: Hex = await account.signTypedData({
    domain: depinDomain(chainId, deviceRegistry),
    types: recordTypes(kind),
    primaryType: kind.name,
    message: recordMessage(kind, record),
  })
  return { ...record, signature }
}
