/**
 * The data market's voucher: a consumer's EIP-712 signature over everything it owes one provider so
 * far and a commitment to everything that provider served it. Vouchers are cumulative, so the
 * latest supersedes every earlier one, and a provider redeems only the latest (DataMarket.redeem).
 *
 * The commitment is a running hash over the served readings' digests, in the order served:
 * `served₀ = 0x00…00`, `servedᵢ = keccak256(servedᵢ₋₁ ‖ digestᵢ)`, with `servedCount` digests in
 * all. A consumer extends it only with digests whose proofs it checked against on-chain readings
 * roots; validators recompute it from what the provider publishes, so a provider cannot claim to
 * have served a reading the consumer did not receive.
 */
import {
  type Account,
  type Address,
  bytesToHex,
  getAddress,
  type Hex,
  hashTypedData,
  hexToBytes,
  isAddressEqual,
  keccak256,
  toBytes,
} from 'viem'
import { z } from 'zod'
import { depinDomain, voucherTypes } from '../chain/typedData.ts'
import { hashDomain } from '../crypto/hashDomain.ts'
import type { Keccak256 } from '../crypto/keccak.ts'
import { ChainError } from '../errors.ts'
import { recoverSigner } from '../readings/recoverReadingSigner.ts'

/** The commitment of a voucher for nothing served yet. */
export const NOTHING_SERVED: Hex = `0x${'00'.repeat(32)}`

export type Voucher = {
  consumer: Address
  provider: Address
  /** Everything the consumer owes the provider so far, in the payment token's smallest unit. */
  cumulativeAmount: bigint
  /** Running hash of the digests of every reading served, in order. */
  served: Hex
  /** How many digests `served` covers. */
  servedCount: bigint
}

export type SignedVoucher = Voucher & { signature: Hex }

/** DataMarket.redeem's arguments for a signed voucher, in order. */
export const redeemArgs = (v: SignedVoucher) =>
  [v.consumer, v.cumulativeAmount, v.served, v.servedCount, v.signature] as const

/** Where a voucher is valid: a chain and its DataMarket. */
export type MarketDomain = { chainId: number; market: Address }

/**
 * Extends a running served commitment by `digests`, in order.
 * @example extendServed(keccak, NOTHING_SERVED, [digestA, digestB]) // the commitment to A then B
 */
export function extendServed(keccak: Keccak256, served: Hex, digests: readonly Hex[]): Hex {
  // Buffer's native hex codec: viem's hexToBytes costs ≈ 2 µs a digest, a paid answer has hundreds
  // (extendServedWithViem, in the tests, is the cross-check)
  const pair = Buffer.alloc(64)
  writeWord(pair, 0, served)
  for (const digest of digests) {
    writeWord(pair, 32, digest)
    pair.set(keccak(pair), 0)
  }
  return `0x${pair.toString('hex', 0, 32)}`
}

/** Writes a 0x-prefixed 32-byte hex word at `offset`; anything else is a RangeError. */
function writeWord(into: Buffer, offset: number, word: Hex): void {
  // Buffer's hex decoding stops at the first character that is not hex: fewer than 32 bytes
  if (
    word.length !== 66 ||
    word[0] !== '0' ||
    word[1] !== 'x' ||
    into.write(word.slice(2), offset, 32, 'hex') !== 32
  )
    throw new RangeError(`not a 32-byte word: ${word}`)
}

/** extendServed with viem's codecs: the reference the fast one is checked against. */
export function extendServedWithViem(keccak: Keccak256, served: Hex, digests: readonly Hex[]): Hex {
  const pair = new Uint8Array(64)
  let current = hexToBytes(served)
  for (const digest of digests) {
    pair.set(current, 0)
    pair.set(hexToBytes(digest), 32)
    current = keccak(pair)
  }
  return bytesToHex(current)
}

/** The EIP-712 digest of a voucher, as DataMarket.redeem computes it. */
export function hashVoucher({ chainId, market }: MarketDomain, voucher: Voucher): Hex {
  return hashTypedData({
    domain: depinDomain(chainId, market),
    types: voucherTypes,
    primaryType: 'Voucher',
    message: voucher,
  })
}

const VOUCHER_TYPEHASH = hexToBytes(
  keccak256(
    toBytes(
      'Voucher(address consumer,address provider,uint256 cumulativeAmount,bytes32 served,uint64 servedCount)',
    ),
  ),
)

/**
 * The fast path of hashVoucher, for the paywall's hot path (a voucher on every paid request): the
 * type hash and domain separator computed once, the struct encoded into a reused buffer and hashed
 * with hash-wasm's keccak. Equal to hashVoucher (a test checks it). Returns the 32-byte digest.
 */
export function createVoucherHasher(keccak: Keccak256, { chainId, market }: MarketDomain) {
  const struct = new Uint8Array(6 * 32)
  struct.set(VOUCHER_TYPEHASH, 0)
  const envelope = new Uint8Array(2 + 32 + 32)
  envelope[0] = 0x19
  envelope[1] = 0x01
  envelope.set(hashDomain(depinDomain(chainId, market)), 2)
  const view = new DataView(struct.buffer)
  return (voucher: Voucher): Uint8Array => {
    struct.fill(0, 32)
    struct.set(hexToBytes(voucher.consumer), 32 + 12)
    struct.set(hexToBytes(voucher.provider), 64 + 12)
    if (voucher.cumulativeAmount < 0n || voucher.cumulativeAmount >= 1n << 256n)
      throw new RangeError('cumulativeAmount is not a uint256')
    for (let i = 0; i < 4; i++)
      view.setBigUint64(
        96 + 8 * i,
        (voucher.cumulativeAmount >> BigInt(64 * (3 - i))) & 0xffff_ffff_ffff_ffffn,
      )
    struct.set(hexToBytes(voucher.served), 128)
    if (voucher.servedCount < 0n || voucher.servedCount >= 1n << 64n)
      throw new RangeError('servedCount is not a uint64')
    view.setBigUint64(160 + 24, voucher.servedCount)
    envelope.set(keccak(struct), 34)
    return keccak(envelope)
  }
}

/** The consumer's signature of a voucher, bound to one chain and DataMarket. */
export async function signVoucher(
  account: Account,
  domain: MarketDomain,
  voucher: Voucher,
): Promise<SignedVoucher> {
  if (!account.signTypedData) {
    throw new ChainError('ACCOUNT_CANNOT_SIGN', `account ${account.address} cannot sign typed data`)
  }
  if (!isAddressEqual(account.address, voucher.consumer)) {
    throw new ChainError(
      'VOUCHER_NOT_OWN',
      `account ${account.address} cannot sign for consumer ${voucher.consumer}`,
    )
  }
  const signature = await account.signTypedData({
    domain: depinDomain(domain.chainId, domain.market),
    types: voucherTypes,
    primaryType: 'Voucher',
    message: voucher,
  })
  return { ...voucher, signature }
}

export type VoucherSignatureCheck =
  | { type: 'valid' }
  | { type: 'invalid'; reason: 'SIGNATURE_MALFORMED' | 'SIGNATURE_MALLEABLE' | 'SIGNATURE_INVALID' }

/**
 * Checks that the consumer signed the voucher for this chain and market (libsecp256k1, high-s
 * refused as on-chain). A voucher of another chain, market or provider recovers to another
 * address, so it is SIGNATURE_INVALID. `hasher`: createVoucherHasher's, on a hot path.
 */
export function checkVoucherSignature(
  keccak: Keccak256,
  domain: MarketDomain,
  voucher: SignedVoucher,
  hasher: (voucher: Voucher) => Uint8Array = (v) => hexToBytes(hashVoucher(domain, v)),
): VoucherSignatureCheck {
  const recovered = recoverSigner(keccak, hasher(voucher), voucher.signature)
  if (recovered.type === 'invalid') return recovered
  return isAddressEqual(recovered.address, voucher.consumer)
    ? { type: 'valid' }
    : { type: 'invalid', reason: 'SIGNATURE_INVALID' }
}

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'an 0x-prefixed 20-byte address')
  .transform((a) => getAddress(a))
const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, 'an 0x-prefixed 32-byte value')
  .transform((v) => v.toLowerCase() as Hex)
const uintString = (bits: number) =>
  z
    .string()
    .regex(/^(0|[1-9]\d{0,77})$/, 'a decimal integer without leading zeros')
    .transform((v) => BigInt(v))
    .refine((v) => v < 1n << BigInt(bits), `must fit in ${bits} bits`)

/** A signed voucher in JSON (amounts as decimal strings), as clients send it. */
export const signedVoucherSchema = z.strictObject({
  consumer: address,
  provider: address,
  cumulativeAmount: uintString(256),
  served: bytes32,
  servedCount: uintString(64),
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte signature')
    .transform((v) => v as Hex),
})

export type SignedVoucherJson = z.input<typeof signedVoucherSchema>

export const signedVoucherToJson = (v: SignedVoucher): SignedVoucherJson => ({
  consumer: v.consumer,
  provider: v.provider,
  cumulativeAmount: v.cumulativeAmount.toString(),
  served: v.served,
  servedCount: v.servedCount.toString(),
  signature: v.signature,
})
