/**
 * The records the judge reads and writes: the registry's view of a device, the verdict on each
 * reading, and each device's score for the epoch. Every validator must produce them bit for bit
 * alike from the same batch and registry state.
 */
import type { Address } from 'viem'
import type { DeviceRecord as IndexerDeviceRecord } from '../../indexer/indexerStore.ts'
import type { SignedReading } from '../../readings/reading.ts'

/** A device as the registry holds it at the epoch's end (the indexer's record; the judge needs no more). */
export type DeviceRecord = Omit<IndexerDeviceRecord, 'registeredAt'>

/** Why a reading was rejected, in the order the rules run. */
export const REJECT_REASONS = [
  'SIGNATURE_INVALID',
  'SIGNATURE_MALLEABLE',
  'SIGNATURE_MALFORMED',
  'DEVICE_UNKNOWN',
  'DEVICE_RETIRED',
  'SCHEMA_MISMATCH',
  'OUT_OF_RANGE',
  'OUTSIDE_EPOCH',
  'SEQUENCE_NOT_INCREASING',
  'RATE_LIMITED',
  'STUCK_VALUE',
  'SPATIAL_OUTLIER',
] as const

export type RejectReason = (typeof REJECT_REASONS)[number]

export type Verdict = { type: 'accepted' } | { type: 'rejected'; reason: RejectReason }

export type JudgedReading = {
  reading: SignedReading
  /** The reading's EIP-712 digest; 32 zero bytes when the reading cannot be encoded at all. */
  digest: Uint8Array
  verdict: Verdict
}

/** A registered device's work in one epoch. */
export type DeviceScore = {
  device: Address
  owner: Address
  /** Readings of the device in the batch, duplicates removed. */
  submitted: number
  accepted: number
  /** accepted × 10000 / submitted, floored. */
  qualityBps: number
  /** min(10000, accepted × 10000 / expectedReadingsPerEpoch), floored. */
  uptimeBps: number
  /** accepted × qualityBps: the device's share of the device pool. */
  weight: bigint
}
