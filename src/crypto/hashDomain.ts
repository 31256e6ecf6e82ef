import { hexToBytes, hashDomain as viemHashDomain } from 'viem'
import type { DepinDomain } from '../chain/typedData.ts'

/** The EIP-712 domain separator of a depin domain, as bytes. */
export function hashDomain(domain: DepinDomain): Uint8Array {
  return hexToBytes(
    viemHashDomain({
      domain: { ...domain, chainId: BigInt(domain.chainId) },
      types: {
        EIP712Domain: [
          { name: 'name', type: 'string' },
          { name: 'version', type: 'string' },
          { name: 'chainId', type: 'uint256' },
          { name: 'verifyingContract', type: 'address' },
        ],
      },
    }),
  )
}
