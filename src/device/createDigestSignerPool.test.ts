import { hashTypedData, keccak256, toBytes } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, describe, expect, it } from 'vitest'
import { depinDomain, readingTypes } from '../chain/typedData.ts'
import { createDigestSignerPool } from './createDigestSignerPool.ts'

const keys = Array.from({ length: 7 }, (_, i) => keccak256(toBytes(`signer pool key ${i}`)))
const pool = createDigestSignerPool({ keys, threads: 2 })
afterAll(() => pool.close())

describe('the digest signer pool', () => {
  it('signs as viem does, bit for bit (RFC 6979, low s), each digest with its own key', async () => {
    const domain = depinDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3')
    // more digests than one job holds, keys in no particular order
    const items = Array.from({ length: 1_100 }, (_, i) => ({
      key: (i * 5) % keys.length,
      message: {
        device: privateKeyToAccount(keys[(i * 5) % keys.length] as `0x${string}`).address,
        seq: BigInt(i + 1),
        time: 1_800_000_000n + BigInt(i),
        values: [BigInt(i), -7n],
      },
    }))
    const digests = items.map(({ message }) =>
      toBytes(hashTypedData({ domain, types: readingTypes, primaryType: 'Reading', message })),
    )
    const signatures = await pool.sign(
      digests,
      items.map((item) => item.key),
    )
    expect(signatures).toHaveLength(items.length)
    for (const i of [0, 1, 511, 512, 513, 1_099]) {
      const { key, message } = items[i] as (typeof items)[number]
      const viem = await privateKeyToAccount(keys[key] as `0x${string}`).signTypedData({
        domain,
        types: readingTypes,
        primaryType: 'Reading',
        message,
      })
      expect(signatures[i]).toBe(viem)
    }
  })

  it('refuses what it cannot sign, with a clear error, and goes on', async () => {
    await expect(pool.sign([new Uint8Array(31)], [0])).rejects.toThrow(/31 bytes, not 32/)
    await expect(pool.sign([new Uint8Array(32).fill(1)], [99])).rejects.toMatchObject({
      code: 'SIGNING_FAILED',
    })
    expect(await pool.sign([new Uint8Array(32).fill(1)], [0])).toHaveLength(1)
  })
})
