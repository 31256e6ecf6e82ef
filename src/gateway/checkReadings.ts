import type { Address, Hex } from 'viem'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import { recordJsonSchema, type SignedReading, signedReadingJsonSchema } from '../readings/reading.ts'
import { READING_KIND, type RecordKind } from '../readings/recordKinds.ts'
import { useCaseOf } from '../usecases/registry.ts'
import type { SignatureOutcome } from '../validator/judge/checkReadingSignatures.ts'

/** What the gateway needs to know of a device: from the indexer's view of the registry. */
export type DeviceLookup = {
  getDevice(device: Address): { deviceClass: number; status: 'active' | 'retired' } | undefined
}

export type GatewayRejectReason =
  | 'SCHEMA_INVALID'
  | 'SCHEMA_MISMATCH'
  | 'SIGNATURE_INVALID'
  | 'SIGNATURE_MALLEABLE'
  | 'SIGNATURE_MALFORMED'
  | 'DEVICE_UNKNOWN'
  | 'DEVICE_RETIRED'
  | 'READING_REPLAYED'
  | 'CLOCK_SKEW'
  | 'EPOCH_SEALED'

export type ReadingVerdict =
  | { index: number; status: 'accepted'; duplicate?: true }
  | { index: number; status: 'rejected'; reason: GatewayRejectReason; message: string }

export type CheckReadingsContext = {
  blueprint: Blueprint
  devices: DeviceLookup
  /** The signature outcome of each parsed reading, by its index in the batch (see parseReadings). */
  signatures: ReadonlyMap<number, SignatureOutcome>
  /** Last accepted (seq, signature) per device (lower-case); read, never written here. */
  lastAccepted: ReadonlyMap<string, { seq: bigint; signature: Hex }>
  /** Gateway clock, unix seconds. */
  now: bigint
  genesisTime: bigint
  epochLength: bigint
  /** Epochs up to this one are sealed: readings for them are refused. */
  sealedThrough: bigint | undefined
}

export type ParsedReadings = {
  /** Readings that passed the wire schema, with their index in the batch. */
  parsed: { index: number; reading: SignedReading }[]
  /** Why the others failed it, by index. */
  invalid: Map<number, string>
}

/**
 * Applies the wire schema to each item of a batch: the environment's reading schema, or, for a use
 * case of several record kinds, each record's kind's.
 */
export function parseReadings(
  raw: readonly unknown[],
  kinds: readonly RecordKind[] = [READING_KIND],
): ParsedReadings {
  const parsed: ParsedReadings['parsed'] = []
  const invalid = new Map<number, string>()
  const schema =
    kinds.length === 1 && kinds[0] === READING_KIND ? signedReadingJsonSchema : recordJsonSchema(kinds)
  for (const [index, item] of raw.entries()) {
    const result = schema.safeParse(item)
    if (result.success) parsed.push({ index, reading: result.data as SignedReading })
    else {
      const issue = result.error.issues[0]
      invalid.set(index, `${issue?.path.join('.') || 'reading'}: ${issue?.message}`)
    }
  }
  return { parsed, invalid }
}

export type CheckReadingsReturnType = {
  verdicts: ReadingVerdict[]
  accepted: { epoch: bigint; reading: SignedReading }[]
}

/**
 * Checks a batch of readings as they arrive, in order: wire schema, registration, the use case's record shape,
 * signature (checked beforehand, in parallel: it must recover to the device), clock skew, sealed
 * epoch, and replay. Sequence numbers strictly increase per device; a reading equal in seq and signature to
 * the last accepted one is a duplicate (acknowledged again, stored once), not a replay. Quality
 * (ranges, stuck sensors, neighbours) is the validators' judgement, not the gateway's.
 * Pure: the caller stores `accepted` and then advances its replay state.
 */
export function checkReadings(
  batch: ParsedReadings & { size: number },
  context: CheckReadingsContext,
): CheckReadingsReturnType {
  const { blueprint, devices, signatures, lastAccepted, now, genesisTime, epochLength, sealedThrough } =
    context
  const verdicts: ReadingVerdict[] = []
  const accepted: { epoch: bigint; reading: SignedReading }[] = []
  const batchLast = new Map<string, { seq: bigint; signature: Hex }>()
  const latestAllowed = now + BigInt(blueprint.epochs.maxClockSkewSeconds)
  // the record's shape is the use case's to check (the environment: one value per class field)
  const useCase = useCaseOf(blueprint)
  const byIndex = new Map(batch.parsed.map(({ index, reading }) => [index, reading]))

  for (let index = 0; index < batch.size; index++) {
    const reading = byIndex.get(index)
    const outcome: ReturnType<typeof checkOne> = reading
      ? checkOne(index, reading)
      : ['SCHEMA_INVALID', batch.invalid.get(index) ?? '']
    if (outcome === 'accepted') verdicts.push({ index, status: 'accepted' })
    else if (outcome === 'duplicate') verdicts.push({ index, status: 'accepted', duplicate: true })
    else verdicts.push({ index, status: 'rejected', reason: outcome[0], message: outcome[1] })
  }
  return { verdicts, accepted }

  function checkOne(
    index: number,
    reading: SignedReading,
  ): 'accepted' | 'duplicate' | [GatewayRejectReason, string] {
    const reject = (reason: GatewayRejectReason, message: string): [GatewayRejectReason, string] => [
      reason,
      message,
    ]
    const device = reading.device.toLowerCase()
    const record = devices.getDevice(reading.device)
    if (!record) return reject('DEVICE_UNKNOWN', `device ${reading.device} is not registered`)
    if (record.status !== 'active') return reject('DEVICE_RETIRED', `device ${reading.device} is retired`)
    const shapeProblem = useCase.recordShapeProblem(reading, record.deviceClass, blueprint)
    if (shapeProblem !== undefined) return reject('SCHEMA_MISMATCH', shapeProblem)
    const signature = signatures.get(index)
    if (signature !== 'VALID') {
      return reject(
        signature ?? 'SIGNATURE_INVALID',
        signature === 'SIGNATURE_INVALID'
          ? 'the signature was not made by the device'
          : 'the signature cannot be verified',
      )
    }
    if (reading.time > latestAllowed) {
      return reject(
        'CLOCK_SKEW',
        `time ${reading.time} is ahead of the gateway clock ${now} by more than the allowed skew`,
      )
    }
    if (reading.time < genesisTime)
      return reject('EPOCH_SEALED', `time ${reading.time} is before the network's genesis`)
    const epoch = (reading.time - genesisTime) / epochLength
    if (sealedThrough !== undefined && epoch <= sealedThrough) {
      return reject('EPOCH_SEALED', `epoch ${epoch} of this reading is already sealed`)
    }
    const last = batchLast.get(device) ?? lastAccepted.get(device)
    if (last && reading.seq <= last.seq) {
      if (reading.seq === last.seq && reading.signature.toLowerCase() === last.signature.toLowerCase()) {
        return 'duplicate'
      }
      return reject('READING_REPLAYED', `seq ${reading.seq} is not above the last accepted ${last.seq}`)
    }
    batchLast.set(device, { seq: reading.seq, signature: reading.signature })
    accepted.push({ epoch, reading })
    return 'accepted'
  }
}
