/**
 * The gateway's signed verdict: what a gateway answers to a request of readings (over HTTP or
 * MQTT), signed as EIP-712 typed data `GatewayVerdict` (see `gatewayVerdictTypes` in
 * `src/chain/typedData.ts`) in the DeviceRegistry's domain with the gateway operator's key, whose
 * address is the gateway's id on the registry's list. A device drops a reading from its offline
 * queue only on a verdict that recovers to a listed gateway and covers exactly what it sent:
 * the request's bytes (by their keccak-256) and, per reading, its device, seq and digest.
 *
 * The signature travels beside the answer's JSON, which stays as it was: `request` (0x + 64 hex),
 * `gateway` (the signer's address) and `signature` (0x + 130 hex) are added fields.
 */
import type { Address, Hex } from 'viem'
import { depinDomain, eip712DomainTypes, gatewayVerdictTypes } from '../chain/typedData.ts'

/** The verdict on one reading, as signed. */
export type ReadingVerdictEntry = {
  device: Address
  seq: bigint
  /** The reading's EIP-712 digest (what the device signed). */
  digest: Hex
  status: 'accepted' | 'rejected'
  /** The rejection's reason, `DUPLICATE` for an acknowledged resend, "" for an accepted reading. */
  reason: string
}

/** A gateway's answer to one request, as signed. */
export type GatewayVerdict = {
  /** keccak-256 of the request's bytes as sent and received. */
  request: Hex
  /** HTTP status of the answer: 200 with a verdict per reading, or the 4xx of a refusal. */
  status: number
  /** The refusal's error code; "" for 200. */
  code: string
  /** One per reading of the request, in request order; none for a refusal. */
  readings: ReadingVerdictEntry[]
}

/** The fields a signed answer carries besides its usual JSON. */
export type VerdictSignature = { request: Hex; gateway: Address; signature: Hex }

/** The reason signed for an accepted reading that was a resend of the last accepted one. */
export const DUPLICATE_REASON = 'DUPLICATE'

/** What a verdict entry says of an item that failed the wire schema (nothing is known of it). */
export const UNPARSED_READING = {
  device: '0x0000000000000000000000000000000000000000',
  seq: 0n,
  digest: '0x0000000000000000000000000000000000000000000000000000000000000000',
} as const satisfies Pick<ReadingVerdictEntry, 'device' | 'seq' | 'digest'>

/** The reason of the one rejection whose entry carries `UNPARSED_READING` instead of the reading. */
export const SCHEMA_INVALID = 'SCHEMA_INVALID'

/**
 * The signed status and reason of a per-reading result of the answer's JSON
 * (`{ status: 'accepted', duplicate? } | { status: 'rejected', reason }`).
 */
export function verdictStatusOf(
  result: { status: 'accepted'; duplicate?: true | undefined } | { status: 'rejected'; reason: string },
): Pick<ReadingVerdictEntry, 'status' | 'reason'> {
  if (result.status === 'rejected') return { status: 'rejected', reason: result.reason }
  return { status: 'accepted', reason: result.duplicate ? DUPLICATE_REASON : '' }
}

/** A verdict as the JSON typed data any EIP-712 tool checks (`eth_signTypedData_v4` shape). */
export type GatewayVerdictTypedData = {
  types: {
    EIP712Domain: Array<{ name: string; type: string }>
    GatewayVerdict: Array<{ name: string; type: string }>
    ReadingVerdict: Array<{ name: string; type: string }>
  }
  primaryType: 'GatewayVerdict'
  domain: { name: string; version: string; chainId: number; verifyingContract: Address }
  message: {
    request: Hex
    status: number
    code: string
    readings: Array<{ device: Address; seq: string; digest: Hex; status: string; reason: string }>
  }
}

/**
 * A verdict as JSON typed data (integers as decimal strings), for tools other than this SDK:
 * `ethers.verifyTypedData(domain, types without EIP712Domain, message, signature)` gives the
 * gateway's address.
 */
export function gatewayVerdictTypedData({
  chainId,
  deviceRegistry,
  verdict,
}: {
  chainId: number
  deviceRegistry: Address
  verdict: GatewayVerdict
}): GatewayVerdictTypedData {
  return {
    types: {
      EIP712Domain: eip712DomainTypes.EIP712Domain.map((f) => ({ ...f })),
      GatewayVerdict: gatewayVerdictTypes.GatewayVerdict.map((f) => ({ ...f })),
      ReadingVerdict: gatewayVerdictTypes.ReadingVerdict.map((f) => ({ ...f })),
    },
    primaryType: 'GatewayVerdict',
    domain: depinDomain(chainId, deviceRegistry),
    message: {
      request: verdict.request,
      status: verdict.status,
      code: verdict.code,
      readings: verdict.readings.map((r) => ({ ...r, seq: r.seq.toString() })),
    },
  }
}
