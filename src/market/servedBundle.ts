/**
 * The served bundle: what a provider publishes, per epoch, so that validators credit the fees it
 * redeemed in that epoch. For each of its redemptions whose block falls in the epoch (in chain
 * order), the readings it served the consumer since the pair's previous redemption: each reading's
 * digest and the settled epoch it was accepted in. Canonical bytes, so its keccak-256 is its
 * content address and any holder (the provider, or a validator) will do:
 *
 *   line 1:  {"format":"depin-served/1","provider":"<lower-case>","epoch":"<e>","redemptions":<n>}
 *   then n:  ["<consumer lower-case>","<block>",<log index>,"<served count before>",[["<digest>","<epoch>"],…]]
 *
 * Every line ends in "\n". A bundle holds only what the chain fixes: a validator checks that its
 * redemptions are exactly the provider's Redeemed events of the epoch and that each list of digests
 * extends the pair's previous commitment to the redeemed one (src/market/voucher.ts), so a provider
 * can neither add a reading the consumer did not sign for nor leave one out and keep the count.
 */
import { type Address, bytesToHex, type Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { RedemptionRecord } from '../indexer/indexerStore.ts'
import { extendServed, NOTHING_SERVED } from './voucher.ts'

export const SERVED_FORMAT = 'depin-served/1'

/** One reading served: its digest and the epoch whose readings root holds it. */
export type ServedItem = { digest: Hex; epoch: bigint }

/** A redemption's served readings, as a bundle lists them. */
export type ServedRedemption = {
  consumer: Address
  block: bigint
  logIndex: number
  /** The pair's served count before this redemption (that of its previous one, 0 for the first). */
  fromCount: bigint
  items: ServedItem[]
}

export type ServedBundle = {
  provider: Address
  epoch: bigint
  redemptions: ServedRedemption[]
}

export type CheckedServedBundle = ServedBundle & { hash: Hex; bytes: Uint8Array }

const UINT = /^(0|[1-9]\d{0,19})$/
const ADDRESS = /^0x[0-9a-f]{40}$/
const DIGEST = /^0x[0-9a-f]{64}$/

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The canonical bytes of a bundle. */
export function encodeServedBundle(bundle: ServedBundle): Uint8Array {
  const lines = [
    JSON.stringify({
      format: SERVED_FORMAT,
      provider: bundle.provider.toLowerCase(),
      epoch: bundle.epoch.toString(),
      redemptions: bundle.redemptions.length,
    }),
    ...bundle.redemptions.map((r) =>
      JSON.stringify([
        r.consumer.toLowerCase(),
        r.block.toString(),
        r.logIndex,
        r.fromCount.toString(),
        r.items.map((i) => [i.digest.toLowerCase(), i.epoch.toString()]),
      ]),
    ),
  ]
  return encoder.encode(`${lines.join('\n')}\n`)
}

/** Whether bytes start as a served bundle (rather than a gateway's batch). */
export function isServedBundle(bytes: Uint8Array): boolean {
  const head = decoder.decode(bytes.subarray(0, 40))
  return head.startsWith(`{"format":"${SERVED_FORMAT}"`)
}

const invalid = (why: string) => new DepinError('SERVED_BUNDLE_INVALID', `served bundle: ${why}`)

/**
 * Decodes canonical bundle bytes with content address `hash`; SERVED_BUNDLE_INVALID when the hash,
 * the format or any field is off, or the bytes are not the canonical encoding of what they say.
 */
export function decodeServedBundle(keccak: Keccak256, bytes: Uint8Array, hash: Hex): CheckedServedBundle {
  if (bytesToHex(keccak(bytes)) !== hash.toLowerCase())
    throw invalid('bytes do not hash to the content address')
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw invalid('not UTF-8')
  }
  const lines = text.split('\n')
  if (lines.at(-1) !== '') throw invalid('does not end in a newline')
  let header: unknown
  let rows: unknown[]
  try {
    header = JSON.parse(lines[0] as string)
    rows = lines.slice(1, -1).map((l) => JSON.parse(l) as unknown)
  } catch {
    throw invalid('a line is not JSON')
  }
  const h = header as { format?: unknown; provider?: unknown; epoch?: unknown; redemptions?: unknown }
  if (h.format !== SERVED_FORMAT) throw invalid(`format is not ${SERVED_FORMAT}`)
  if (typeof h.provider !== 'string' || !ADDRESS.test(h.provider))
    throw invalid('provider is not a lower-case address')
  if (typeof h.epoch !== 'string' || !UINT.test(h.epoch))
    throw invalid('epoch is not a uint64 decimal string')
  if (h.redemptions !== rows.length) throw invalid('redemptions does not count its lines')
  const redemptions = rows.map((row, i): ServedRedemption => {
    if (!Array.isArray(row) || row.length !== 5) throw invalid(`redemption ${i} is not 5 fields`)
    const [consumer, block, logIndex, fromCount, items] = row as unknown[]
    if (typeof consumer !== 'string' || !ADDRESS.test(consumer)) throw invalid(`redemption ${i}: consumer`)
    if (typeof block !== 'string' || !UINT.test(block)) throw invalid(`redemption ${i}: block`)
    if (typeof logIndex !== 'number' || !Number.isSafeInteger(logIndex) || logIndex < 0)
      throw invalid(`redemption ${i}: log index`)
    if (typeof fromCount !== 'string' || !UINT.test(fromCount)) throw invalid(`redemption ${i}: served count`)
    if (!Array.isArray(items)) throw invalid(`redemption ${i}: items`)
    return {
      consumer: consumer as Address,
      block: BigInt(block),
      logIndex,
      fromCount: BigInt(fromCount),
      items: items.map((item, j) => {
        if (!Array.isArray(item) || item.length !== 2) throw invalid(`redemption ${i} item ${j}`)
        const [digest, epoch] = item as unknown[]
        if (typeof digest !== 'string' || !DIGEST.test(digest))
          throw invalid(`redemption ${i} item ${j}: digest`)
        if (typeof epoch !== 'string' || !UINT.test(epoch)) throw invalid(`redemption ${i} item ${j}: epoch`)
        return { digest: digest as Hex, epoch: BigInt(epoch) }
      }),
    }
  })
  const bundle = { provider: h.provider as Address, epoch: BigInt(h.epoch), redemptions }
  const canonical = encodeServedBundle(bundle)
  if (canonical.length !== bytes.length || bytesToHex(keccak(canonical)) !== hash.toLowerCase())
    throw invalid('not in canonical form')
  return { ...bundle, hash: hash.toLowerCase() as Hex, bytes }
}

/**
 * Why a bundle is not the provider's account of its redemptions in its epoch, or undefined when it
 * is: the same redemptions as the chain's (`redemptions`, the provider's Redeemed events of the
 * epoch in chain order), each starting at the pair's previous served count and extending the
 * previous commitment (`previous`, that of the pair's redemption before, if any) to the one redeemed.
 */
export function servedBundleProblem(
  keccak: Keccak256,
  bundle: ServedBundle,
  redemptions: readonly RedemptionRecord[],
  previous: (r: RedemptionRecord) => RedemptionRecord | undefined,
): string | undefined {
  if (bundle.redemptions.length !== redemptions.length)
    return `lists ${bundle.redemptions.length} redemptions, the chain has ${redemptions.length}`
  for (const [i, chain] of redemptions.entries()) {
    const listed = bundle.redemptions[i] as ServedRedemption
    if (
      listed.consumer.toLowerCase() !== chain.consumer.toLowerCase() ||
      listed.block !== chain.block ||
      listed.logIndex !== chain.logIndex
    )
      return `redemption ${i} is not the chain's (${chain.consumer} at block ${chain.block}, log ${chain.logIndex})`
    const before = previous(chain)
    const fromCount = before?.servedCount ?? 0n
    if (listed.fromCount !== fromCount)
      return `redemption ${i} starts at ${listed.fromCount}, not ${fromCount}`
    if (BigInt(listed.items.length) !== chain.servedCount - fromCount)
      return `redemption ${i} lists ${listed.items.length} readings, the voucher counts ${chain.servedCount - fromCount}`
    const served = extendServed(
      keccak,
      before?.served ?? NOTHING_SERVED,
      listed.items.map((item) => item.digest),
    )
    if (served !== chain.served.toLowerCase())
      return `redemption ${i}: its readings do not give the voucher's commitment`
  }
  return undefined
}
