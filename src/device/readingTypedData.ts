import type { Address } from 'viem'
import { depinDomain, eip712DomainTypes, readingTypes } from '../chain/typedData.ts'
import type { Reading } from '../readings/reading.ts'

export type ReadingTypedDataParameters = { chainId: number; deviceRegistry: Address; reading: Reading }

/** EIP-712 typed data in the `eth_signTypedData_v4` JSON shape, integers as decimal strings. */
export type ReadingTypedData = {
  types: {
    EIP712Domain: Array<{ name: string; type: string }>
    Reading: Array<{ name: string; type: string }>
  }
  primaryType: 'Reading'
  domain: { name: string; version: string; chainId: number; verifyingContract: Address }
  message: { device: Address; seq: string; time: string; values: string[] }
}

/**
 * A reading as the JSON typed data any EIP-712 tool signs (`cast wallet sign --data`,
 * `eth_signTypedData_v4`, ethers after dropping `EIP712Domain` from `types`): a device without
 * this SDK can produce readings the gateway accepts.
 */
export function readingTypedData({
  chainId,
  deviceRegistry,
  reading,
}: ReadingTypedDataParameters): ReadingTypedData {
  return {
    types: {
      EIP712Domain: eip712DomainTypes.EIP712Domain.map((f) => ({ ...f })),
      Reading: readingTypes.Reading.map((f) => ({ ...f })),
    },
    primaryType: 'Reading',
    domain: depinDomain(chainId, deviceRegistry),
    message: {
      device: reading.device,
      seq: reading.seq.toString(),
      time: reading.time.toString(),
      values: reading.values.map(String),
    },
  }
}
