import { createKeccak, type IHasher } from 'hash-wasm'

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

const ADDRESS_BYTES = 20
const HASH_BYTES = 32
const MAX_UINT64 = 0xffff_ffff_ffff_ffffn
const MAX_UINT256 = (1n << 256n) - 1n
/** Nodes 0..HEX_CACHE_NODES-1 (the top 16 levels) get their hex string memoized for proofs. */
const HEX_CACHE_NODES = (1 << 16) - 1
/** Runs at most this long are finished with insertion sort instead of another radix pass. */
const INSERTION_SORT_MAX = 32

let hasherPromise: Promise<IHasher> | undefined

/** The one shared keccak-256 hasher; every use is synchronous (init..digest) so sharing is safe. */
function getHasher(): Promise<IHasher> {
  hasherPromise ??= createKeccak(256).catch((err: unknown) => {
    hasherPromise = undefined
    throw err
  })
  return hasherPromise
}

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
function hashEncodedLeaf(hasher: IHasher, encoded: Uint8Array, out: Uint8Array, offset: number): void {
  innerLeafHash.set(hasher.init().update(encoded).digest('binary'))
  out.set(hasher.init().update(innerLeafHash).digest('binary'), offset)
}

/** Lexicographic comparison of the `len` bytes starting at a and b inside buf. */
function compareBytes(buf: Uint8Array, a: number, b: number, len: number): number {
  for (let k = 0; k < len; k++) {
    const d = (buf[a + k] as number) - (buf[b + k] as number)
    if (d !== 0) return d
  }
  return 0
}

/**
 * Sorts idx[lo..hi) (indices of `stride`-byte keys in keys) by key, comparing from byte `depth` on
 * (earlier bytes are equal within the range): MSD radix sort, insertion sort for short runs.
 */
function sortKeys(
  keys: Uint8Array,
  stride: number,
  idx: Uint32Array,
  tmp: Uint32Array,
  lo: number,
  hi: number,
  depth: number,
): void {
  if (depth >= stride || hi - lo < 2) return
  if (hi - lo <= INSERTION_SORT_MAX) {
    const len = stride - depth
    for (let i = lo + 1; i < hi; i++) {
      const v = idx[i] as number
      const vOff = v * stride + depth
      let j = i - 1
      while (j >= lo && compareBytes(keys, (idx[j] as number) * stride + depth, vOff, len) > 0) {
        idx[j + 1] = idx[j] as number
        j--
      }
      idx[j + 1] = v
    }
    return
  }
  const counts = new Uint32Array(257)
  for (let i = lo; i < hi; i++) {
    const d = (keys[(idx[i] as number) * stride + depth] as number) + 1
    counts[d] = (counts[d] as number) + 1
  }
  for (let b = 0; b < 256; b++) counts[b + 1] = (counts[b + 1] as number) + (counts[b] as number)
  const starts = counts.slice(0, 256)
  for (let i = lo; i < hi; i++) {
    const v = idx[i] as number
    const b = keys[v * stride + depth] as number
    tmp[lo + (counts[b] as number)] = v
    counts[b] = (counts[b] as number) + 1
  }
  idx.set(tmp.subarray(lo, hi), lo)
  for (let b = 0; b < 256; b++) {
    const start = lo + (starts[b] as number)
    const end = lo + (counts[b] as number)
    if (end - start > 1) sortKeys(keys, stride, idx, tmp, start, end, depth + 1)
  }
}

/** Indices 0..n-1 ordered by the `stride`-byte keys packed in keys (byte-lexicographic). */
function sortedIndices(keys: Uint8Array, stride: number, n: number): Uint32Array {
  const idx = new Uint32Array(n)
  for (let i = 0; i < n; i++) idx[i] = i
  sortKeys(keys, stride, idx, new Uint32Array(n), 0, n, 0)
  return idx
}

/** Double-hashed leaf hash keccak256(keccak256(abi.encode(address, uint256))), the one fixed encoding used everywhere. */
export async function hashRewardLeaf(leaf: RewardLeaf): Promise<`0x${string}`> {
  const hasher = await getHasher()
  const encoded = new Uint8Array(new ArrayBuffer(64))
  if (!parseAddressInto(leaf.account, encoded, 12)) {
    throw new Error(`Rewards leaf has an invalid account address: ${String(leaf.account)}`)
  }
  checkAmount(leaf.account, leaf.cumulativeAmount)
  writeAmount(new DataView(encoded.buffer), leaf.cumulativeAmount)
  const out = new Uint8Array(HASH_BYTES)
  hashEncodedLeaf(hasher, encoded, out, 0)
  return `0x${Buffer.from(out.buffer).toString('hex')}`
}

/** Builds the rewards tree (same root, layout and proofs as StandardMerkleTree.of(values, ['address', 'uint256'])). */
export async function buildRewardsTree(leaves: readonly RewardLeaf[]): Promise<RewardsTree> {
  const n = leaves.length
  if (n === 0) throw new Error('Cannot build a rewards tree from 0 leaves: expected at least one leaf')
  const hasher = await getHasher()

  // All 2n-1 nodes in one flat buffer, node t at bytes [32t, 32t+32); leaves are nodes n-1..2n-2.
  const treeLength = 2 * n - 1
  const firstLeaf = n - 1
  const tree = new Uint8Array(treeLength * HASH_BYTES)
  const tree32 = new Uint32Array(tree.buffer)
  const leafRegion = tree.subarray(firstLeaf * HASH_BYTES)

  // 1. Validate, pack addresses and hash leaves in input order; input leaf i's hash goes to node n-1+i for now.
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
    hashEncodedLeaf(hasher, encoded, leafRegion, i * HASH_BYTES)
    accounts.push(account)
    amounts.push(cumulativeAmount)
  }

  // 2. Reject duplicate accounts (addresses are compared as bytes, so case does not matter).
  const byAddr = sortedIndices(addrs, ADDRESS_BYTES, n)
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

  // 3. Sort leaves by hash; like OpenZeppelin's makeMerkleTree, sorted leaf `pos` lives at node treeLength-1-pos,
  // i.e. leaf-region slot n-1-pos. Move the hashes there in place by following the permutation's cycles.
  const order = sortedIndices(leafRegion, HASH_BYTES, n) // order[pos] = input index
  const positionOf = new Uint32Array(n)
  for (let pos = 0; pos < n; pos++) positionOf[order[pos] as number] = pos
  const placed = new Uint8Array(n)
  const held = new Uint32Array(8)
  const regionWord = firstLeaf * 8
  for (let start = 0; start < n; start++) {
    if (placed[start] === 1) continue
    for (let k = 0; k < 8; k++) held[k] = tree32[regionWord + start * 8 + k] as number
    let slot = start
    for (;;) {
      placed[slot] = 1
      const from = order[n - 1 - slot] as number
      const dst = regionWord + slot * 8
      if (from === start) {
        for (let k = 0; k < 8; k++) tree32[dst + k] = held[k] as number
        break
      }
      const src = regionWord + from * 8
      for (let k = 0; k < 8; k++) tree32[dst + k] = tree32[src + k] as number
      slot = from
    }
  }

  // 4. Inner nodes from the end: tree[t] = keccak(sorted(tree[2t+1], tree[2t+2])).
  const pair = new Uint8Array(new ArrayBuffer(2 * HASH_BYTES))
  const pair32 = new Uint32Array(pair.buffer)
  for (let t = firstLeaf - 1; t >= 0; t--) {
    const left = (2 * t + 1) * 8
    const right = left + 8
    const leftFirst = compareBytes(tree, left * 4, right * 4, HASH_BYTES) <= 0
    const a = leftFirst ? left : right
    const b = leftFirst ? right : left
    for (let k = 0; k < 8; k++) {
      pair32[k] = tree32[a + k] as number
      pair32[8 + k] = tree32[b + k] as number
    }
    tree.set(hasher.init().update(pair).digest('binary'), t * HASH_BYTES)
  }

  const nodes = Buffer.from(tree.buffer, tree.byteOffset, tree.byteLength)
  // Hex of the top levels is memoized: every proof repeats them (at most HEX_CACHE_NODES strings, ~7 MB).
  const hexCache = new Array<`0x${string}` | undefined>(Math.min(treeLength, HEX_CACHE_NODES)).fill(undefined)
  const nodeHex = (t: number): `0x${string}` => {
    if (t >= HEX_CACHE_NODES) return `0x${nodes.toString('hex', t * HASH_BYTES, (t + 1) * HASH_BYTES)}`
    let hex = hexCache[t]
    if (hex === undefined) {
      hex = `0x${nodes.toString('hex', t * HASH_BYTES, (t + 1) * HASH_BYTES)}`
      hexCache[t] = hex
    }
    return hex
  }
  const checkPosition = (position: number): void => {
    if (!Number.isInteger(position) || position < 0 || position >= n) {
      throw new RangeError(`Leaf position ${position} is out of range 0..${n - 1}`)
    }
  }
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
      if (cmp === 0) return positionOf[i]
      if (cmp < 0) lo = mid + 1
      else hi = mid
    }
    return undefined
  }

  const getProofAt = (position: number): `0x${string}`[] => {
    checkPosition(position)
    const proof: `0x${string}`[] = []
    let t = treeLength - 1 - position
    while (t > 0) {
      proof.push(nodeHex(t % 2 === 1 ? t + 1 : t - 1))
      t = (t - 1) >>> 1
    }
    return proof
  }

  return {
    root: nodeHex(0),
    size: n,
    getProof: (account) => {
      const position = indexOf(account)
      return position === undefined ? undefined : getProofAt(position)
    },
    indexOf,
    getProofAt,
    leafAt: (position) => {
      checkPosition(position)
      const i = order[position] as number
      return { account: accounts[i] as `0x${string}`, cumulativeAmount: amounts[i] as bigint }
    },
  }
}
