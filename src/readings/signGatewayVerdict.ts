import { type Address, bytesToHex, getAddress, type Hex } from 'viem'
import type { VerdictHasher } from './createVerdictHasher.ts'
import type { GatewayVerdict, VerdictSignature } from './gatewayVerdict.ts'

/** A key that signs 32-byte digests as they are (a viem `privateKeyToAccount(…)` does). */
export type DigestSigner = { address: Address; sign(parameters: { hash: Hex }): Promise<Hex> }

export type SignGatewayVerdictParameters = {
  /** The gateway operator's key: its address is the gateway's id on the registry's list. */
  operator: DigestSigner
  /** `createVerdictHasher` of the network's chain and DeviceRegistry. */
  hash: VerdictHasher
  verdict: GatewayVerdict
}

/**
 * Signs a gateway's answer as EIP-712 typed data `GatewayVerdict`: the same signature as
 * `signTypedData` over `gatewayVerdictTypes`, from the fast hasher's digest.
 * @returns the fields the answer's JSON carries besides its own: `request`, `gateway`, `signature`
 * @example
 * const { request, gateway, signature } = await signGatewayVerdict({ operator, hash, verdict })
 */
export async function signGatewayVerdict({
  operator,
  hash,
  verdict,
}: SignGatewayVerdictParameters): Promise<VerdictSignature> {
  const signature = await operator.sign({ hash: bytesToHex(hash(verdict)) })
  return { request: verdict.request, gateway: getAddress(operator.address), signature }
}
