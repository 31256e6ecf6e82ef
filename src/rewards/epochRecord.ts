/**
 * An epoch's record: what a validator publishes for each settled epoch so that any other role (an
 * API of its own, an archive, an auditor) can serve the epoch without that validator's database —
 * the accepted records (the readings tree's leaves, with their signatures), every scored device's
 * receipt (the receipts tree's leaves), the cumulative amounts after the epoch (the rewards tree's
 * leaves) and the usage fees it credited through each device. Canonical JSON bytes, addressed by
 * their keccak-256; trusted by nobody: `verifyEpochRecord` rebuilds the three roots and checks them
 * against the report the chain accepted, and every record's signature against its device.
 */
import { type Address, getAddress, type Hex } from 'viem'
import { z } from 'zod'
import type { Keccak256 } from '../crypto/keccak.ts'
import type { ReadingHasher } from '../readings/createReadingHasher.ts'
import { recordJsonSchema, type SignedReading, toRecordJson } from '../readings/reading.ts'
import type { RecordKind } from '../readings/recordKinds.ts'
import { recoverSigner } from '../readings/recoverReadingSigner.ts'
import { buildReadingsTree, EMPTY_READINGS_ROOT } from './readingsTree.ts'
import {
  type Receipt,
  type ReceiptJson,
  receiptFromJson,
  receiptsRootOf,
  receiptToJson,
} from './receiptsTree.ts'
import { cumulativeRewardsRoot } from './rewardsTree.ts'

export const EPOCH_RECORD_VERSION = 1

export type EpochRecord = {
  epoch: bigint
  /** The accepted records, in canonical order (device, then seq). */
  readings: SignedReading[]
  /** Every scored device's receipt, by device. */
  receipts: Receipt[]
  /** Every account's cumulative amount after the epoch (lower-case keys). */
  cumulative: Map<string, bigint>
  /** Usage fees the epoch credited through each device (lower-case keys). */
  usageFees: Map<string, bigint>
}

/** The three roots of an epoch's report, as the chain accepted it. */
export type EpochRoots = { readingsRoot: Hex; receiptsRoot: Hex; rewardsRoot: Hex }

const lower = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const byDeviceThenSeq = (a: SignedReading, b: SignedReading) =>
  lower(a.device.toLowerCase(), b.device.toLowerCase()) || (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0)
const entries = (map: ReadonlyMap<string, bigint>): [Address, string][] =>
  [...map]
    .map(([key, amount]) => [key.toLowerCase(), amount] as const)
    .sort(([a], [b]) => lower(a, b))
    .map(([key, amount]) => [getAddress(key), amount.toString()])

/**
 * The record's canonical bytes (UTF-8 JSON, fields and entries in a fixed order, whatever order
 * they were given in): equal records give equal bytes, hence equal addresses.
 */
export function encodeEpochRecord(record: EpochRecord, kinds: readonly RecordKind[]): Uint8Array {
  const json = {
    version: EPOCH_RECORD_VERSION,
    epoch: record.epoch.toString(),
    readings: [...record.readings].sort(byDeviceThenSeq).map((r) => toRecordJson(r, kinds)),
    receipts: [...record.receipts]
      .sort((a, b) => lower(a.device.toLowerCase(), b.device.toLowerCase()))
      .map(receiptToJson),
    cumulative: entries(record.cumulative),
    usageFees: entries(record.usageFees),
  }
  return new TextEncoder().encode(JSON.stringify(json))
}

const decimal = z.string().regex(/^(0|[1-9]\d{0,77})$/, 'a non-negative decimal integer')
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 20-byte 0x address')
const receiptSchema = z.object({
  epoch: decimal,
  device: address,
  owner: address,
  submitted: z.number().int().min(0),
  accepted: z.number().int().min(0),
  rejected: z.array(z.number().int().min(0)).max(256),
  units: z.array(z.string().regex(/^-?(0|[1-9]\d{0,77})$/)).max(64),
  weight: decimal,
  totalWeight: decimal,
  devicePool: decimal,
  reward: decimal,
})
const recordSchema = (kinds: readonly RecordKind[]) =>
  z.object({
    version: z.literal(EPOCH_RECORD_VERSION),
    epoch: decimal,
    readings: z.array(recordJsonSchema(kinds)),
    receipts: z.array(receiptSchema),
    cumulative: z.array(z.tuple([address, decimal])),
    usageFees: z.array(z.tuple([address, decimal])),
  })

/** Reads a record's bytes (untrusted: any shape is checked); throws a RangeError naming the problem. */
export function decodeEpochRecord(bytes: Uint8Array, kinds: readonly RecordKind[]): EpochRecord {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (error) {
    throw new RangeError(`an epoch record is UTF-8 JSON: ${(error as Error).message}`)
  }
  const parsed = recordSchema(kinds).safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new RangeError(`not an epoch record: ${issue?.path.join('.')}: ${issue?.message}`)
  }
  const record = parsed.data
  return {
    epoch: BigInt(record.epoch),
    readings: record.readings,
    receipts: record.receipts.map((r) => receiptFromJson(r as ReceiptJson)),
    cumulative: new Map(record.cumulative.map(([a, amount]) => [a.toLowerCase(), BigInt(amount)])),
    usageFees: new Map(record.usageFees.map(([a, amount]) => [a.toLowerCase(), BigInt(amount)])),
  }
}

export type VerifyEpochRecordResult = { type: 'valid' } | { type: 'invalid'; problem: string }

/**
 * Checks a record against the report the chain accepted for its epoch: its readings' digests
 * rebuild the readings root, its receipts the receipts root, its amounts the rewards root; every
 * reading's signature recovers to its device; every receipt is of the record's epoch.
 */
export function verifyEpochRecord(
  record: EpochRecord,
  roots: EpochRoots,
  tools: { hash: ReadingHasher; keccak: Keccak256 },
): VerifyEpochRecordResult {
  const invalid = (problem: string): VerifyEpochRecordResult => ({ type: 'invalid', problem })
  const digests = record.readings.map((r) => tools.hash(r))
  for (const [i, reading] of record.readings.entries()) {
    const signer = recoverSigner(tools.keccak, digests[i] as Uint8Array, reading.signature)
    if (signer.type !== 'recovered' || signer.address.toLowerCase() !== reading.device.toLowerCase())
      return invalid(`reading ${i} (${reading.device} seq ${reading.seq}) is not signed by its device`)
  }
  const readingsRoot =
    digests.length === 0 ? EMPTY_READINGS_ROOT : buildReadingsTree(digests, tools.keccak).root
  if (readingsRoot !== roots.readingsRoot)
    return invalid(`its readings make root ${readingsRoot}, the chain's is ${roots.readingsRoot}`)
  const wrongEpoch = record.receipts.find((r) => r.epoch !== record.epoch)
  if (wrongEpoch)
    return invalid(`a receipt of epoch ${wrongEpoch.epoch} in the record of epoch ${record.epoch}`)
  const receiptsRoot = receiptsRootOf(record.receipts, tools.keccak)
  if (receiptsRoot !== roots.receiptsRoot)
    return invalid(`its receipts make root ${receiptsRoot}, the chain's is ${roots.receiptsRoot}`)
  const rewardsRoot = cumulativeRewardsRoot(record.cumulative, tools.keccak)
  if (rewardsRoot !== roots.rewardsRoot)
    return invalid(`its amounts make root ${rewardsRoot}, the chain's is ${roots.rewardsRoot}`)
  return { type: 'valid' }
}
