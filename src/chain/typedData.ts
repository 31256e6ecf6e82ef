/**
 * The EIP-712 types of the protocol, defined once. All share the name "depin" and version "1";
 * the verifying contract tells them apart: DeviceRegistry for device registrations, maker
 * attestations and readings; EpochManager for epoch reports.
 */
import type { Address } from 'viem'

export const DOMAIN_NAME = 'depin'
export const DOMAIN_VERSION = '1'

export type DepinDomain = { name: string; version: string; chainId: number; verifyingContract: Address }

/** The domain of a contract of the protocol on a chain. */
export function depinDomain(chainId: number, verifyingContract: Address): DepinDomain {
  return { name: DOMAIN_NAME, version: DOMAIN_VERSION, chainId, verifyingContract }
}

/** The EIP712Domain type of every depin domain (name, version, chainId, verifyingContract). */
export const eip712DomainTypes = {
  EIP712Domain: [
    { name: 'name', type: 'string' },
    { name: 'version', type: 'string' },
    { name: 'chainId', type: 'uint256' },
    { name: 'verifyingContract', type: 'address' },
  ],
} as const

/** A device key's proof of possession: it agrees to be registered by `owner` in `deviceClass`. */
export const deviceRegistrationTypes = {
  DeviceRegistration: [
    { name: 'owner', type: 'address' },
    { name: 'deviceClass', type: 'uint32' },
  ],
} as const

/** A registered maker vouches that `device` is genuine hardware of `deviceClass`. */
export const makerAttestationTypes = {
  MakerAttestation: [
    { name: 'device', type: 'address' },
    { name: 'deviceClass', type: 'uint32' },
  ],
} as const

/** A validator's signed verdict on a closed epoch. */
export const epochReportTypes = {
  EpochReport: [
    { name: 'epoch', type: 'uint64' },
    { name: 'rulesHash', type: 'bytes32' },
    { name: 'readingsRoot', type: 'bytes32' },
    { name: 'rewardsRoot', type: 'bytes32' },
    { name: 'receiptsRoot', type: 'bytes32' },
    { name: 'total', type: 'uint256' },
    { name: 'accepted', type: 'uint32' },
  ],
} as const

/**
 * A validator's announcement of the sealed batches it holds for an epoch (content addresses,
 * ascending), exchanged before anyone signs the epoch's report. Off-chain only, in the
 * EpochManager's domain so that it cannot be replayed on another network.
 */
export const batchSetTypes = {
  BatchSet: [
    { name: 'epoch', type: 'uint64' },
    { name: 'batches', type: 'bytes32[]' },
  ],
} as const

/** A device's signed measurement: fixed-point integers in the blueprint's field order. */
export const readingTypes = {
  Reading: [
    { name: 'device', type: 'address' },
    { name: 'seq', type: 'uint64' },
    { name: 'time', type: 'uint64' },
    { name: 'values', type: 'int64[]' },
  ],
} as const

export type EpochReport = {
  epoch: bigint
  /** The network's rules (blueprint and use case) the report was judged by: the EpochManager's. */
  rulesHash: `0x${string}`
  readingsRoot: `0x${string}`
  rewardsRoot: `0x${string}`
  /** Root of the epoch's device receipts (src/rewards/receiptsTree.ts). */
  receiptsRoot: `0x${string}`
  total: bigint
  accepted: number
}

/** An EpochReport in JSON: bigints as decimal strings. */
export type EpochReportJson = Omit<EpochReport, 'epoch' | 'total'> & { epoch: string; total: string }

export const epochReportToJson = (r: EpochReport): EpochReportJson => ({
  epoch: r.epoch.toString(),
  rulesHash: r.rulesHash,
  readingsRoot: r.readingsRoot,
  rewardsRoot: r.rewardsRoot,
  receiptsRoot: r.receiptsRoot,
  total: r.total.toString(),
  accepted: r.accepted,
})

export const epochReportFromJson = (r: EpochReportJson): EpochReport => ({
  ...r,
  epoch: BigInt(r.epoch),
  total: BigInt(r.total),
})

/**
 * A gateway's signed answer to one request of readings, in the DeviceRegistry's domain, signed
 * with the gateway operator's key (the address on the registry's gateway list). `request` is the
 * keccak-256 of the request's bytes as the gateway received them (the HTTP body, or the MQTT
 * payload), so an answer holds for exactly one request; `status` is the HTTP status of the
 * answer (200, or the 4xx of a refusal), `code` the refusal's error code ("" for 200), and
 * `readings` one entry per reading of the request, in request order (none for a refusal).
 */
export const gatewayVerdictTypes = {
  GatewayVerdict: [
    { name: 'request', type: 'bytes32' },
    { name: 'status', type: 'uint16' },
    { name: 'code', type: 'string' },
    { name: 'readings', type: 'ReadingVerdict[]' },
  ],
  /**
   * The verdict on one reading: the reading's device, seq and EIP-712 digest (zero for an item
   * that failed the wire schema), `status` "accepted" or "rejected", and `reason` the rejection's
   * reason, "DUPLICATE" for a resend of the last accepted reading, "" otherwise.
   */
  ReadingVerdict: [
    { name: 'device', type: 'address' },
    { name: 'seq', type: 'uint64' },
    { name: 'digest', type: 'bytes32' },
    { name: 'status', type: 'string' },
    { name: 'reason', type: 'string' },
  ],
} as const

/**
 * A consumer's payment to a provider of the data market, in the DataMarket's domain: everything it
 * owes that provider so far (`cumulativeAmount`, in the payment token's smallest unit) and its
 * commitment to everything the provider served it (`served`: the running hash of the served
 * readings' digests, src/market/voucher.ts; `servedCount`: how many). The latest voucher
 * supersedes all earlier ones; the provider redeems it on the DataMarket.
 */
export const voucherTypes = {
  Voucher: [
    { name: 'consumer', type: 'address' },
    { name: 'provider', type: 'address' },
    { name: 'cumulativeAmount', type: 'uint256' },
    { name: 'served', type: 'bytes32' },
    { name: 'servedCount', type: 'uint64' },
  ],
} as const
