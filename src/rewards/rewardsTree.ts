import { getAddress, type Hex, keccak256, toBytes } from 'viem'
import { type Keccak256, loadKeccak256 } from '../crypto/keccak.ts'
import { buildMerkleTree } from './merkleTree.ts'
import { compareBytes, sortByteKeys } from './sortByteKeys.ts'

/** One rewards entry: an account and the cumulative amount it may claim in total. */
export type RewardLeaf = { account: `0x${string}`; cumulativeAmount: bigint }

/** A built rewards Merkle tree, identical to OpenZeppelin's StandardMerkleTree over ['address', 'uint256']. */
export type RewardsTree = {
  root: `0x${string}`
  size: number
  /** Proof for an account, or undefined if the account is not in the tree. */
  getProof(account: `0x${string}`): `0x${string}`[] | undefined
  /** Index of the leaf of the account in the tree's sorted leaf order (undefined if absent). */
  indexOf(account: `0x${string}`): number | undefined
  /** Proof by sorted leaf position 0..size-1 (fast path for generating all proofs). */
  getProofAt(position: number): `0x${string}`[]
  /** The leaf at a sorted position */
  leafAt(position: number): RewardLeaf
}

/**
 * The rewards root of a chain with nothing to claim yet: the EpochManager never accepts a zero root,
 * so an epoch whose cumulative rewards are all zero commits to this sentinel instead.
 */
export const EMPTY_REWARDS_ROOT: Hex = keccak256(toBytes('depin.rewards.empty'))

const ADDRESS_BYTES = 20
const HASH_BYTES = 32
const MAX_UINT64 = 0xffff_ffff_ffff_ffffn
const MAX_UINT256 = (1n << 256n) - 1n

/** Hex digit value per char code, -1 for non-hex characters. */
const HEX_VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i
for (let i = 0; i < 6; i++) {
  HEX_VALUE[65 + i] = 10 + i
  HEX_VALUE[97 + i] = 10 + i
}

/** Writes the 20 bytes of a 0x-prefixed 40-hex-digit address into out at offset; false if malformed. */
function parseAddressInto(account: unknown, out: Uint8Array, offset: number): boolean {
  if (typeof account !== 'string' || account.length !== 42 || account[0] !== '0') return false
  const x = account.charCodeAt(1)
  if (x !== 120 && x !== 88) return false
  for (let i = 0; i < ADDRESS_BYTES; i++) {
    const hi = HEX_VALUE[account.charCodeAt(2 + 2 * i)] ?? -1
    const lo = HEX_VALUE[account.charCodeAt(3 + 2 * i)] ?? -1
    if (hi < 0 || lo < 0) return false
    out[offset + i] = (hi << 4) | lo
  }
  return true
}

/** Throws unless amount is a bigint in the uint256 range; the message names the account. */
function checkAmount(account: string, amount: unknown): asserts amount is bigint {
  if (typeof amount !== 'bigint') {
    throw new Error(`Rewards leaf for account ${account}: cumulativeAmount must be a bigint`)
  }
  if (amount < 0n) {
    throw new Error(`Rewards leaf for account ${account}: cumulativeAmount ${amount} is negative`)
  }
  if (amount > MAX_UINT256) {
    throw new Error(`Rewards leaf for account ${account}: cumulativeAmount ${amount} does not fit in uint256`)
  }
}

/** Writes the 32-byte big-endian amount at offset 32 of the 64-byte abi.encode(address, uint256) buffer. */
function writeAmount(view: DataView, amount: bigint): void {
  if (amount <= MAX_UINT64) {
    view.setBigUint64(32, 0n)
    view.setBigUint64(40, 0n)
    view.setBigUint64(48, 0n)
    view.setBigUint64(56, amount)
    return
  }
  let rest = amount
  for (let off = 56; off >= 32; off -= 8) {
    view.setBigUint64(off, rest & MAX_UINT64)
    rest >>= 64n
  }
}

/**
 * Scratch for the inner leaf hash. Explicitly backed by an ArrayBuffer: hash-wasm reads `data.buffer`, which for
 * a small fresh digest array would force V8 to move it off-heap (a malloc per leaf, slow at 1M leaves).
 */
const innerLeafHash = new Uint8Array(new ArrayBuffer(HASH_BYTES))

/** Double keccak of the 64-byte encoding in `encoded` (bytes 0..11 must be zero), written into out at offset. */
function hashEncodedLeaf(keccak: Keccak256, encoded: Uint8Array, out: Uint8Array, offset: number): void {
  innerLeafHash.set(keccak(encoded))
  out.set(keccak(innerLeafHash), offset)
}

/** Double-hashed leaf hash keccak256(keccak256(abi.encode(address, uint256))), the one fixed encoding used everywhere. */
export async function hashRewardLeaf(leaf: RewardLeaf): Promise<`0x${string}`> {
  const keccak = await loadKeccak256()
  const encoded = new Uint8Array(new ArrayBuffer(64))
  if (!parseAddressInto(leaf.account, encoded, 12)) {
    throw new Error(`Rewards leaf has an invalid account address: ${String(leaf.account)}`)
  }
  checkAmount(leaf.account, leaf.cumulativeAmount)
  writeAmount(new DataView(encoded.buffer), leaf.cumulativeAmount)
  const out = new Uint8Array(HASH_BYTES)
  hashEncodedLeaf(keccak, encoded, out, 0)
  return `0x${Buffer.from(out.buffer).toString('hex')}`
}

/** Builds the rewards tree (same root, layout and proofs as StandardMerkleTree.of(values, ['address', 'uint256'])). */
export async function buildRewardsTree(leaves: readonly RewardLeaf[]): Promise<RewardsTree> {
  if (leaves.length === 0)
    throw new Error('Cannot build a rewards tree from 0 leaves: expected at least one leaf')
  return buildRewardsTreeWith(leaves, await loadKeccak256())
}

/**
 * The claim tree over every account with a positive cumulative amount (accounts in any case,
 * sorted, checksummed); undefined when there is none.
 */
export function cumulativeRewardsTree(
  cumulative: ReadonlyMap<string, bigint>,
  keccak: Keccak256,
): RewardsTree | undefined {
  const leaves = [...cumulative]
    .filter(([, amount]) => amount > 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([account, cumulativeAmount]) => ({ account: getAddress(account), cumulativeAmount }))
  return leaves.length === 0 ? undefined : buildRewardsTreeWith(leaves, keccak)
}

/** The root of cumulativeRewardsTree, EMPTY_REWARDS_ROOT when no account is owed anything. */
export const cumulativeRewardsRoot = (cumulative: ReadonlyMap<string, bigint>, keccak: Keccak256): Hex =>
  cumulativeRewardsTree(cumulative, keccak)?.root ?? EMPTY_REWARDS_ROOT

/** buildRewardsTree with a keccak already loaded (loadKeccak256), synchronously. */
export function buildRewardsTreeWith(leaves: readonly RewardLeaf[], keccak: Keccak256): RewardsTree {
  const n = leaves.length
  if (n === 0) throw new Error('Cannot build a rewards tree from 0 leaves: expected at least one leaf')

  // 1. Validate, pack addresses and hash leaves in input order.
  const leafHashes = new Uint8Array(n * HASH_BYTES)
  const addrs = new Uint8Array(n * ADDRESS_BYTES)
  const addrs32 = new Uint32Array(addrs.buffer)
  // Filled with push: `new Array(n)` would be a slow, sparse dictionary array for large n.
  const accounts: `0x${string}`[] = []
  const amounts: bigint[] = []
  const encoded = new Uint8Array(new ArrayBuffer(64))
  const encoded32 = new Uint32Array(encoded.buffer)
  const encodedView = new DataView(encoded.buffer)
  for (let i = 0; i < n; i++) {
    const leaf = leaves[i]
    if (leaf === undefined || leaf === null) throw new Error(`Rewards leaf #${i} is missing`)
    const { account, cumulativeAmount } = leaf
    if (!parseAddressInto(account, encoded, 12)) {
      throw new Error(`Rewards leaf #${i} has an invalid account address: ${String(account)}`)
    }
    checkAmount(account, cumulativeAmount)
    for (let k = 0; k < 5; k++) addrs32[i * 5 + k] = encoded32[3 + k] as number
    writeAmount(encodedView, cumulativeAmount)
    hashEncodedLeaf(keccak, encoded, leafHashes, i * HASH_BYTES)
    accounts.push(account)
    amounts.push(cumulativeAmount)
  }

  // 2. Reject duplicate accounts (addresses are compared as bytes, so case does not matter).
  const byAddr = sortByteKeys(addrs, ADDRESS_BYTES, n)
  for (let k = 1; k < n; k++) {
    const a = byAddr[k - 1] as number
    const b = byAddr[k] as number
    if (compareBytes(addrs, a * ADDRESS_BYTES, b * ADDRESS_BYTES, ADDRESS_BYTES) === 0) {
      const [first, second] = a < b ? [a, b] : [b, a]
      throw new Error(
        `Duplicate rewards account ${accounts[second]} (leaf #${second}; already given as ${accounts[first]} at leaf #${first})`,
      )
    }
  }

  // 3. The tree itself: leaves sorted by hash, OpenZeppelin's layout.
  const tree = buildMerkleTree(leafHashes, keccak)
  const lookupKey = new Uint8Array(ADDRESS_BYTES)

  const indexOf = (account: `0x${string}`): number | undefined => {
    if (!parseAddressInto(account, lookupKey, 0)) return undefined
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const i = byAddr[mid] as number
      let cmp = 0
      for (let k = 0; k < ADDRESS_BYTES && cmp === 0; k++) {
        cmp = (addrs[i * ADDRESS_BYTES + k] as number) - (lookupKey[k] as number)
      }
      if (cmp === 0) return tree.positionOf(i)
      if (cmp < 0) lo = mid + 1
      else hi = mid
    }
    return undefined
  }

  return {
    root: tree.root,
    size: n,
    getProof: (account) => {
      const position = indexOf(account)
      return position === undefined ? undefined : tree.getProofAt(position)
    },
    indexOf,
    getProofAt: tree.getProofAt,
    leafAt: (position) => {
      const i = tree.indexAt(position)
      return { account: accounts[i] as `0x${string}`, cumulativeAmount: amounts[i] as bigint }
    },
  }
}
