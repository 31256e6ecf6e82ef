/**
 * Records as the signature check pool hands them to its workers: packed into one ArrayBuffer per
 * job (moved to the worker, not copied), each record's EIP-712 words already written
 * (createRecordWords) and its signature as bytes. The thread that has the records pays for
 * little more than the hex it parses; the worker reads no JavaScript object, only bytes, and
 * hashes and recovers straight from them.
 *
 *   u32 count, u32 offset of each record, then each record at its offset:
 *   u8 status, u8 kind, u16 0, u32 length of its words, 65 bytes of signature, 7 bytes 0, its words
 *
 * `checkPackedRecord` gives exactly the digest, leaf hash and outcome `checkReadingSignature`
 * gives for the record it was packed from (a test compares them on malformed records too).
 */
import type { Keccak256 } from '../../crypto/keccak.ts'
import type { RecordWords, RecordWordsHasher } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { recoverSignerBytes, SIGNATURE_HEX } from '../../readings/recoverReadingSigner.ts'
import { hashReadingLeafInto } from '../../rewards/readingsTree.ts'
import { isEncodable, SIGNATURE_OUTCOMES, type SignatureChecks } from './checkReadingSignatures.ts'

/** What the packing thread found: hash and recover; not encodable (no digest); hashable, but no 65-byte hex signature. */
const HASH_AND_RECOVER = 0
const NOT_ENCODABLE = 1
const SIGNATURE_NOT_HEX = 2

const HEADER_BYTES = 80
const SIGNATURE_AT = 8

const VALID = SIGNATURE_OUTCOMES.indexOf('VALID')
const INVALID = SIGNATURE_OUTCOMES.indexOf('SIGNATURE_INVALID')
const MALFORMED = SIGNATURE_OUTCOMES.indexOf('SIGNATURE_MALFORMED')

/** Packs readings[indices[j]] for j in order; the worker finds record j at the j-th offset. */
export function packRecords(
  readings: readonly SignedReading[],
  indices: Uint32Array,
  words: RecordWords,
): ArrayBuffer {
  const count = indices.length
  const offsets = new Uint32Array(count)
  const statuses = new Uint8Array(count)
  let size = 4 + 4 * count
  for (let j = 0; j < count; j++) {
    const reading = readings[indices[j] as number] as SignedReading
    offsets[j] = size
    const encodable = isEncodable(reading)
    statuses[j] = encodable ? HASH_AND_RECOVER : NOT_ENCODABLE
    size += HEADER_BYTES + (encodable ? words.sizeOf(reading) : 0)
  }
  if (size > 0xffff_ffff) throw new RangeError(`a job of ${count} records does not fit 4 GB`)
  const buffer = new ArrayBuffer(size)
  const bytes = Buffer.from(buffer)
  const view = new DataView(buffer)
  view.setUint32(0, count, true)
  for (let j = 0; j < count; j++) {
    const at = offsets[j] as number
    view.setUint32(4 + 4 * j, at, true)
    if (statuses[j] === NOT_ENCODABLE) {
      bytes[at] = NOT_ENCODABLE
      continue
    }
    const reading = readings[indices[j] as number] as SignedReading
    let status = HASH_AND_RECOVER
    let length = 0
    try {
      length = words.write(reading, bytes, view, at + HEADER_BYTES)
    } catch {
      status = NOT_ENCODABLE // a value outside its kind's types, or an unknown kind
    }
    if (status === HASH_AND_RECOVER) {
      const { signature } = reading
      if (typeof signature === 'string' && SIGNATURE_HEX.test(signature))
        bytes.write(signature.slice(2), at + SIGNATURE_AT, 65, 'hex')
      else status = SIGNATURE_NOT_HEX
    }
    bytes[at] = status
    bytes[at + 1] = reading.kind ?? 0
    view.setUint32(at + 4, length, true)
  }
  return buffer
}

/** The number of records packed in a job's buffer. */
export const packedCount = (buffer: ArrayBuffer): number => new DataView(buffer).getUint32(0, true)

/**
 * Checks the j-th packed record and writes its digest, leaf hash and outcome at `index` of checks,
 * as checkReadingSignature does: VALID only when the signature recovers, with a low s, to the
 * record's own device.
 */
export function checkPackedRecord(
  packed: Uint8Array,
  view: DataView,
  j: number,
  hash: RecordWordsHasher,
  keccak: Keccak256,
  checks: SignatureChecks,
  index: number,
): void {
  const at = view.getUint32(4 + 4 * j, true)
  const status = packed[at] as number
  if (status === NOT_ENCODABLE) {
    checks.outcomes[index] = MALFORMED
    return
  }
  const wordsAt = at + HEADER_BYTES
  const digest = hash(packed[at + 1] as number, packed, wordsAt, view.getUint32(at + 4, true))
  checks.digests.set(digest, index * 32)
  hashReadingLeafInto(keccak, digest, checks.leafHashes, index * 32)
  if (status === SIGNATURE_NOT_HEX) {
    checks.outcomes[index] = MALFORMED
    return
  }
  checks.outcomes[index] = recoveredOutcome(packed, at + SIGNATURE_AT, digest, keccak, wordsAt + 12)
}

/** recoverSigner's verdict on the signature at packed[sig…] over digest, against the device at packed[device…]. */
function recoveredOutcome(
  packed: Uint8Array,
  sig: number,
  digest: Uint8Array,
  keccak: Keccak256,
  device: number,
): number {
  const signer = recoverSignerBytes(keccak, digest, packed.subarray(sig, sig + 65))
  if (!(signer instanceof Uint8Array)) return SIGNATURE_OUTCOMES.indexOf(signer)
  for (let b = 0; b < 20; b++) if (signer[b] !== packed[device + b]) return INVALID
  return VALID
}
