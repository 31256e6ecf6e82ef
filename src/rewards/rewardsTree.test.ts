import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { getAddress, keccak256, toBytes, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { buildRewardsTree, EMPTY_REWARDS_ROOT, hashRewardLeaf, type RewardLeaf } from './rewardsTree.ts'

const ENCODING = ['address', 'uint256']
const MAX_UINT256 = (1n << 256n) - 1n

/** Deterministic pseudo-random leaves: addresses and amounts derived from keccak256 of a seed string. */
function makeLeaves(count: number, seed: string): RewardLeaf[] {
  const leaves: RewardLeaf[] = []
  for (let i = 0; i < count; i++) {
    const h = keccak256(toHex(`${seed}:${i}`))
    const lower = `0x${h.slice(2, 42)}` as const
    // Mix lowercase and checksummed inputs.
    const account = i % 2 === 0 ? lower : getAddress(lower)
    const r = BigInt(keccak256(toHex(`${seed}:amount:${i}`)))
    const kind = i % 5
    const cumulativeAmount =
      kind === 0 ? r % 10n ** 24n : kind === 1 ? r >> 200n : kind === 2 ? r : kind === 3 ? 0n : r % 1000n
    leaves.push({ account, cumulativeAmount })
  }
  return leaves
}

const toValue = (leaf: RewardLeaf): [string, bigint] => [leaf.account, leaf.cumulativeAmount]

describe('buildRewardsTree matches OpenZeppelin StandardMerkleTree', () => {
  for (const size of [1, 2, 3, 7, 100, 1000]) {
    it(`size ${size}: same root, layout and proofs`, async () => {
      const leaves = makeLeaves(size, `set-${size}`)
      const values = leaves.map(toValue)
      const oz = StandardMerkleTree.of(values, ENCODING)
      const tree = await buildRewardsTree(leaves)

      expect(tree.root).toBe(oz.root)
      expect(tree.size).toBe(size)

      // Sorted leaf order matches OpenZeppelin's layout: position p lives at tree[length - 1 - p].
      const ozNodes = oz.dump().tree
      for (let p = 0; p < size; p++) {
        expect(await hashRewardLeaf(tree.leafAt(p))).toBe(ozNodes[ozNodes.length - 1 - p])
      }

      const step = size > 100 ? Math.ceil(size / 50) : 1
      for (let i = 0; i < size; i += step) {
        const leaf = leaves[i] as RewardLeaf
        const value = toValue(leaf)
        const proof = tree.getProof(leaf.account)
        expect(proof).toEqual(oz.getProof(value))
        expect(StandardMerkleTree.verify(tree.root, ENCODING, value, proof ?? [])).toBe(true)

        const position = tree.indexOf(leaf.account)
        expect(position).toBeTypeOf('number')
        expect(tree.getProofAt(position as number)).toEqual(proof)
        expect(tree.leafAt(position as number)).toEqual(leaf)
      }
    })
  }

  it('a single leaf is its own root with an empty proof', async () => {
    const [leaf] = makeLeaves(1, 'single') as [RewardLeaf]
    const tree = await buildRewardsTree([leaf])
    expect(tree.root).toBe(await hashRewardLeaf(leaf))
    expect(tree.getProof(leaf.account)).toEqual([])
    expect(tree.getProofAt(0)).toEqual([])
  })

  it('looks accounts up case-insensitively and returns undefined for absent accounts', async () => {
    const leaves = makeLeaves(50, 'lookup')
    const tree = await buildRewardsTree(leaves)
    for (const leaf of leaves) {
      const lower = leaf.account.toLowerCase() as `0x${string}`
      const checksummed = getAddress(leaf.account)
      const upper = `0x${leaf.account.slice(2).toUpperCase()}` as const
      const position = tree.indexOf(leaf.account)
      expect(position).toBeDefined()
      expect(tree.indexOf(lower)).toBe(position)
      expect(tree.indexOf(checksummed)).toBe(position)
      expect(tree.indexOf(upper)).toBe(position)
      expect(tree.getProof(checksummed)).toEqual(tree.getProof(lower))
    }
    const absent = makeLeaves(1, 'absent')[0] as RewardLeaf
    expect(tree.indexOf(absent.account)).toBeUndefined()
    expect(tree.getProof(absent.account)).toBeUndefined()
    expect(tree.indexOf('0x1234')).toBeUndefined()
  })

  it('handles structured addresses sharing long prefixes and extreme amounts', async () => {
    const leaves: RewardLeaf[] = Array.from({ length: 300 }, (_, i) => ({
      account: `0x${i.toString(16).padStart(40, '0')}` as const,
      cumulativeAmount: i === 0 ? MAX_UINT256 : BigInt(i) << BigInt(i % 240),
    }))
    const oz = StandardMerkleTree.of(leaves.map(toValue), ENCODING)
    const tree = await buildRewardsTree(leaves)
    expect(tree.root).toBe(oz.root)
    for (const leaf of leaves.slice(0, 40)) {
      expect(tree.getProof(leaf.account)).toEqual(oz.getProof(toValue(leaf)))
    }
  })

  it('getProofAt and leafAt reject positions out of range', async () => {
    const tree = await buildRewardsTree(makeLeaves(3, 'range'))
    expect(() => tree.getProofAt(3)).toThrow(RangeError)
    expect(() => tree.getProofAt(-1)).toThrow(RangeError)
    expect(() => tree.leafAt(1.5)).toThrow(RangeError)
  })
})

describe('hashRewardLeaf', () => {
  it('equals OpenZeppelin leafHash', async () => {
    const leaves = [
      ...makeLeaves(20, 'hash'),
      { account: '0x0000000000000000000000000000000000000000', cumulativeAmount: 0n },
      { account: '0xffffffffffffffffffffffffffffffffffffffff', cumulativeAmount: MAX_UINT256 },
    ] satisfies RewardLeaf[]
    const oz = StandardMerkleTree.of(leaves.map(toValue), ENCODING)
    for (const leaf of leaves) {
      expect(await hashRewardLeaf(leaf)).toBe(oz.leafHash(toValue(leaf)))
    }
  })

  it('rejects invalid leaves', async () => {
    await expect(
      hashRewardLeaf({ account: '0x0000000000000000000000000000000000000001', cumulativeAmount: -1n }),
    ).rejects.toThrow(/0x0000000000000000000000000000000000000001.*negative/)
    await expect(hashRewardLeaf({ account: '0xnothex', cumulativeAmount: 1n })).rejects.toThrow(/0xnothex/)
  })
})

describe('buildRewardsTree input validation', () => {
  const a = '0xAbCdEf0123456789aBcDeF0123456789abCDef01' as const
  const b = '0x00000000000000000000000000000000000000b0' as const

  it('rejects an empty leaf set', async () => {
    await expect(buildRewardsTree([])).rejects.toThrow(/0 leaves/)
  })

  it('rejects duplicate accounts regardless of case', async () => {
    const dup = a.toLowerCase() as `0x${string}`
    await expect(
      buildRewardsTree([
        { account: a, cumulativeAmount: 1n },
        { account: b, cumulativeAmount: 2n },
        { account: dup, cumulativeAmount: 3n },
      ]),
    ).rejects.toThrow(new RegExp(`Duplicate rewards account ${dup}`))
  })

  it('rejects negative amounts naming the account', async () => {
    await expect(
      buildRewardsTree([
        { account: b, cumulativeAmount: 1n },
        { account: a, cumulativeAmount: -5n },
      ]),
    ).rejects.toThrow(new RegExp(`${a}.*negative`))
  })

  it('rejects amounts >= 2^256 naming the account and accepts 2^256 - 1', async () => {
    await expect(buildRewardsTree([{ account: a, cumulativeAmount: 1n << 256n }])).rejects.toThrow(
      new RegExp(`${a}.*uint256`),
    )
    const ok = await buildRewardsTree([{ account: a, cumulativeAmount: MAX_UINT256 }])
    expect(ok.root).toBe(StandardMerkleTree.of([[a, MAX_UINT256]], ENCODING).root)
  })

  it('rejects malformed addresses naming the account', async () => {
    await expect(
      buildRewardsTree([{ account: '0x123' as `0x${string}`, cumulativeAmount: 1n }]),
    ).rejects.toThrow(/0x123/)
    await expect(
      buildRewardsTree([{ account: `0x${'g'.repeat(40)}`, cumulativeAmount: 1n }]),
    ).rejects.toThrow(/0xggg/)
  })
})

describe('EMPTY_REWARDS_ROOT', () => {
  it('is keccak256("depin.rewards.empty"), never zero', () => {
    expect(EMPTY_REWARDS_ROOT).toBe(keccak256(toBytes('depin.rewards.empty')))
    expect(BigInt(EMPTY_REWARDS_ROOT)).not.toBe(0n)
  })
})
