import { type Address, hexToBytes, keccak256, toBytes } from 'viem'
import { depinDomain } from '../chain/typedData.ts'
import { hashDomain } from '../crypto/hashDomain.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import type { GatewayVerdict } from './gatewayVerdict.ts'

const READING_VERDICT_TYPE =
  'ReadingVerdict(address device,uint64 seq,bytes32 digest,string status,string reason)'
const READING_VERDICT_TYPEHASH = hexToBytes(keccak256(toBytes(READING_VERDICT_TYPE)))
const GATEWAY_VERDICT_TYPEHASH = hexToBytes(
  keccak256(
    toBytes(
      `GatewayVerdict(bytes32 request,uint16 status,string code,ReadingVerdict[] readings)${READING_VERDICT_TYPE}`,
    ),
  ),
)
/** Strings hashed once and kept: statuses and reason codes are a handful; more are hashed each time. */
const MAX_CACHED_STRINGS = 64

/** Computes a verdict's EIP-712 digest (what the gateway signs) as 32 bytes. */
export type VerdictHasher = (verdict: GatewayVerdict) => Uint8Array

/**
 * The fast path of EIP-712 hashing for gateway verdicts (a request's answer may cover a
 * thousand readings): type hashes and the domain separator computed once, each entry encoded
 * into a reused buffer and hashed with hash-wasm's keccak. Equal to viem's `hashTypedData`
 * over `gatewayVerdictTypes` (a test checks it).
 * @param chainId the chain of the DeviceRegistry
 * @param deviceRegistry the verifying contract (the domain of readings and verdicts)
 */
export async function createVerdictHasher(chainId: number, deviceRegistry: Address): Promise<VerdictHasher> {
  const keccak = await loadKeccak256()
  const domainSeparator = hashDomain(depinDomain(chainId, deviceRegistry))
  const strings = new Map<string, Uint8Array>()
  const hashString = (text: string) => {
    const known = strings.get(text)
    if (known) return known
    const hash = keccak(new TextEncoder().encode(text))
    if (strings.size < MAX_CACHED_STRINGS) strings.set(text, hash)
    return hash
  }
  const entry = new Uint8Array(6 * 32)
  entry.set(READING_VERDICT_TYPEHASH, 0)
  const entryView = new DataView(entry.buffer)
  const top = new Uint8Array(5 * 32)
  top.set(GATEWAY_VERDICT_TYPEHASH, 0)
  const topView = new DataView(top.buffer)
  const envelope = new Uint8Array(2 + 32 + 32)
  envelope[0] = 0x19
  envelope[1] = 0x01
  envelope.set(domainSeparator, 2)

  // seq is a uint64 and status a uint16 (DataView throws a RangeError on anything wider, rather
  // than hash it wrongly); addresses and digests must be 20 and 32 bytes
  return (verdict) => {
    const hashes = new Uint8Array(32 * verdict.readings.length)
    verdict.readings.forEach((r, i) => {
      entry.fill(0, 32, 96)
      entry.set(fixedBytes(r.device, 20), 32 + 12)
      entryView.setBigUint64(64 + 24, r.seq)
      entry.set(fixedBytes(r.digest, 32), 96)
      entry.set(hashString(r.status), 128)
      entry.set(hashString(r.reason), 160)
      hashes.set(keccak(entry), i * 32)
    })
    top.set(fixedBytes(verdict.request, 32), 32)
    top.fill(0, 64, 96)
    if (!Number.isInteger(verdict.status) || verdict.status < 0 || verdict.status > 0xffff) {
      throw new RangeError(`verdict status ${verdict.status} is not a uint16`)
    }
    topView.setUint16(64 + 30, verdict.status)
    top.set(hashString(verdict.code), 96)
    top.set(keccak(hashes), 128)
    envelope.set(keccak(top), 34)
    return keccak(envelope)
  }
}

function fixedBytes(hex: string, size: number): Uint8Array {
  const bytes = hexToBytes(hex as `0x${string}`)
  if (bytes.length !== size) throw new RangeError(`${hex} is not ${size} bytes`)
  return bytes
}
