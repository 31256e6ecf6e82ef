/**
 * The records the judge reads and writes: the registry's view of a device, the verdict on each
 * reading, and each device's score for the epoch. Every validator must produce them bit for bit
 * alike from the same batch and registry state.
 */
import type { Address } from 'viem'
import type { DeviceRecord as IndexerDeviceRecord } from '../../indexer/indexerStore.ts'
import type { SignedReading } from '../../readings/reading.ts'

/** A device as the registry holds it at the epoch's end (the indexer's record; the judge needs no more). */
export type DeviceRecord = Omit<IndexerDeviceRecord, 'registeredAt'> & {
  /** Time of its registration's block (the indexer's; tools judging without one leave it out). */
  registeredAt?: bigint
}

/**
 * Version of the pipeline's own checks and scoring frame: part of every network's rules hash.
 * 2: an epoch's input may hold late batches of earlier epochs (src/validator/lateBatches.ts).
 */
export const PIPELINE_RULES_VERSION = 2

/**
 * Why the pipeline itself rejects a reading, before any use case's rules: its signature, and the
 * registry. A use case's reasons follow these (useCase.rejectReasons), so an epoch's reasons are
 * `rejectReasonsOf(useCase)`.
 */
export const PIPELINE_REJECT_REASONS = [
  'SIGNATURE_INVALID',
  'SIGNATURE_MALLEABLE',
  'SIGNATURE_MALFORMED',
  'DEVICE_UNKNOWN',
  'DEVICE_RETIRED',
] as const

/** Every reason a reading of this use case can be rejected for, in the order the rules run. */
export function rejectReasonsOf(useCase: { rejectReasons: readonly string[] }): readonly string[] {
  return [...PIPELINE_REJECT_REASONS, ...useCase.rejectReasons]
}

/** A reason code: one of the pipeline's or of the use case's rejectReasons. */
export type RejectReason = string

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
  /** Its readings rejected per reason: index i counts verdict code i + 1 (rejectReasonsOf order). */
  rejected: readonly number[]
  /** The use case's measures of the device's work (the environment: qualityBps, uptimeBps). */
  units: Readonly<Record<string, number>>
  /** The device's share of the device pool, by the use case's weighting. */
  weight: bigint
}
