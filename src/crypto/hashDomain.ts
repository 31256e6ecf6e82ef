import { hexToBytes, hashDomain as viemHashDomain } from 'viem'
import { type DepinDomain, eip712DomainTypes } from '../chain/typedData.ts'

/** The EIP-712 domain separator of a depin domain, as bytes. */
export function hashDomain(domain: DepinDomain): Uint8Array {
  return hexToBytes(
    viemHashDomain({
      domain: { ...domain, chainId: BigInt(domain.chainId) },
      types: eip712DomainTypes,
    }),
  )
}
