import { type Address, bytesToHex, getAddress, type Hex } from 'viem'
import { z } from 'zod'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { createReadingHasher } from '../readings/createReadingHasher.ts'
import { createVerdictHasher } from '../readings/createVerdictHasher.ts'
import {
  type GatewayVerdict,
  type ReadingVerdictEntry,
  SCHEMA_INVALID,
  UNPARSED_READING,
  verdictStatusOf,
} from '../readings/gatewayVerdict.ts'
import type { SignedReading } from '../readings/reading.ts'
import type { RecordKind } from '../readings/recordKinds.ts'
import { recoverSigner } from '../readings/recoverReadingSigner.ts'
import type { GatewayList } from './openGatewayList.ts'
import { type PostReadingsReturnType, readGatewayAnswer } from './postReadings.ts'

/** Why a device ignored an answer that would have dropped readings from its queue. */
export type VerdictIgnoredCode =
  /** No `gateway` and `signature`: anyone could have written it. */
  | 'VERDICT_UNSIGNED'
  /** Signed for another request (its `request` is not the hash of what this device sent). */
  | 'VERDICT_MISMATCH'
  /** The signature does not recover to the `gateway` it names over this answer to this request: altered, or made for other readings. */
  | 'VERDICT_FORGED'
  /** Signed by its `gateway`, which the registry does not list. */
  | 'VERDICT_SIGNER_UNLISTED'
  /** The gateway list could not be read (no RPC answer yet): nothing can be believed. */
  | 'GATEWAY_LIST_UNAVAILABLE'
  /** Over MQTT: a message on the verdicts topic that is not an answer at all (null, empty, not JSON, no id). */
  | 'VERDICT_MALFORMED'

/** What a device transport reports besides its answers: answers it ignored, and its own failures. */
export type DeviceTransportEvent =
  | { type: 'verdict_ignored'; code: VerdictIgnoredCode; message: string; source: string; gateway?: Address }
  | {
      type: 'transport_error'
      code: 'MQTT_CONNECTION_ERROR' | 'MQTT_SUBSCRIBE_FAILED'
      message: string
      source: string
    }

export type VerifyAnswerParameters = {
  /** The readings of the request, in request order. */
  readings: readonly SignedReading[]
  /** keccak-256 of the request's bytes as sent. */
  request: Hex
  /** The answer's HTTP status (over MQTT, its `status` field) and JSON body. */
  status: number
  body: unknown
  /** Where the answer came from, for messages. */
  source: string
}

export type VerifyAnswerReturnType =
  /** An answer that may drop readings (`answered`, `refused`), signed by a listed gateway; or `unavailable`, which drops none. */
  | PostReadingsReturnType
  /** An answer that would drop readings but is not a listed gateway's verdict on this request. */
  | { type: 'ignored'; code: VerdictIgnoredCode; message: string; gateway?: Address }

export type VerdictVerifier = {
  /** Checks one answer to one request; never throws for what the answer holds. */
  verify(parameters: VerifyAnswerParameters): Promise<VerifyAnswerReturnType>
}

export type CreateVerdictVerifierParameters = {
  chainId: number
  /** The DeviceRegistry: the domain of readings and verdicts. */
  deviceRegistry: Address
  /** The gateways whose verdicts count (`openGatewayList`). */
  gateways: GatewayList
  /** The use case's record kinds, to compute each record's digest (default: Reading). */
  kinds?: readonly RecordKind[]
}

const signatureFields = z.object({
  gateway: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
  request: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/)
    .optional(),
})

/**
 * The check a device makes before it lets an answer drop readings from its queue: an answer
 * that accepts or rejects readings, or refuses the request, counts only when it carries a
 * `GatewayVerdict` signature (see `src/readings/gatewayVerdict.ts`) that recovers to a gateway
 * on the list, over exactly this request (the hash of its bytes) and these readings (device,
 * seq, digest, in order) with the answer's own status and reasons. An answer that drops nothing
 * (5xx, 408, 429, unreadable) needs no signature: the readings stay queued anyway.
 * @example
 * const verifier = createVerdictVerifier({ chainId, deviceRegistry, gateways: openGatewayList({ rpcUrl, deviceRegistry }) })
 */
export function createVerdictVerifier({
  chainId,
  deviceRegistry,
  gateways,
  kinds,
}: CreateVerdictVerifierParameters): VerdictVerifier {
  const tools = Promise.all([
    loadKeccak256(),
    createReadingHasher(chainId, deviceRegistry, kinds),
    createVerdictHasher(chainId, deviceRegistry),
  ])
  return {
    async verify({ readings, request, status, body, source }) {
      const answer = readGatewayAnswer({ status, body, count: readings.length, source })
      if (answer.type === 'unavailable') return answer
      const fields = signatureFields.safeParse(body)
      if (!fields.success) {
        return {
          type: 'ignored',
          code: 'VERDICT_UNSIGNED',
          message: `${source} answered without a gateway's signature`,
        }
      }
      const gateway = getAddress(fields.data.gateway)
      if (fields.data.request !== undefined && fields.data.request.toLowerCase() !== request.toLowerCase()) {
        return {
          type: 'ignored',
          code: 'VERDICT_MISMATCH',
          message: `${source} answered with ${gateway}'s verdict on another request`,
          gateway,
        }
      }
      const [keccak, readingDigest, verdictDigest] = await tools
      const verdict: GatewayVerdict =
        answer.type === 'answered'
          ? { request, status, code: '', readings: answer.results.map((r, i) => entryOf(readings[i], r)) }
          : { request, status, code: answer.code, readings: [] }
      let digest: Uint8Array
      try {
        digest = verdictDigest(verdict)
      } catch {
        // a status or reason the typed data cannot carry: no gateway signed this
        return {
          type: 'ignored',
          code: 'VERDICT_FORGED',
          message: `${source} answered with an unsignable verdict`,
          gateway,
        }
      }
      const signer = recoverSigner(keccak, digest, fields.data.signature as Hex)
      if (signer.type !== 'recovered' || signer.address !== gateway.toLowerCase()) {
        return {
          type: 'ignored',
          code: 'VERDICT_FORGED',
          message: `${source} answered with a verdict ${gateway} did not sign for these readings`,
          gateway,
        }
      }
      const standing = await gateways.standing(gateway)
      if (standing === 'listed') return answer
      return standing === 'unlisted'
        ? {
            type: 'ignored',
            code: 'VERDICT_SIGNER_UNLISTED',
            message: `${source} answered with a verdict signed by ${gateway}, which is not a listed gateway`,
            gateway,
          }
        : {
            type: 'ignored',
            code: 'GATEWAY_LIST_UNAVAILABLE',
            message: `cannot read the gateway list to check ${gateway}'s verdict from ${source}`,
            gateway,
          }

      function entryOf(
        reading: SignedReading | undefined,
        result: Extract<PostReadingsReturnType, { type: 'answered' }>['results'][number],
      ): ReadingVerdictEntry {
        const status = verdictStatusOf(result)
        // the gateway could not parse the item: its entry names no reading
        if (!reading || (result.status === 'rejected' && result.reason === SCHEMA_INVALID)) {
          return { ...UNPARSED_READING, ...status }
        }
        return {
          device: reading.device,
          seq: reading.seq,
          digest: bytesToHex(readingDigest(reading)),
          ...status,
        }
      }
    },
  }
}
