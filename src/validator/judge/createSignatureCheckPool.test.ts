import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkReadingSignatures } from './checkReadingSignatures.ts'
import { createSignatureCheckPool, type SignatureCheckPool } from './createSignatureCheckPool.ts'
import { CHAIN_ID, DEVICE_REGISTRY, type JudgeHashing, loadJudgeHashing, mixedBatch } from './testFleet.ts'

let hashing: JudgeHashing
let pool: SignatureCheckPool
beforeAll(async () => {
  hashing = await loadJudgeHashing()
  pool = createSignatureCheckPool({
    chainId: CHAIN_ID,
    deviceRegistry: DEVICE_REGISTRY,
    threads: 2,
    chunkSize: 5,
  })
})
afterAll(() => pool.close())

describe('createSignatureCheckPool', () => {
  it('gives the same digests and outcomes as checking on this thread, in many small jobs', async () => {
    const { readings } = await mixedBatch()
    const local = checkReadingSignatures(readings, hashing.digest, hashing.keccak)
    const [first, second] = await Promise.all([pool.check(readings), pool.check(readings.slice(3))])
    expect(Buffer.from(first.digests).equals(Buffer.from(local.digests))).toBe(true)
    expect(Buffer.from(first.leafHashes).equals(Buffer.from(local.leafHashes))).toBe(true)
    expect([...first.outcomes]).toEqual([...local.outcomes])
    // concurrent checks do not mix
    expect(Buffer.from(second.digests).equals(Buffer.from(local.digests.subarray(3 * 32)))).toBe(true)
    expect([...second.outcomes]).toEqual([...local.outcomes.subarray(3)])
    expect(await pool.check([])).toEqual({
      digests: new Uint8Array(0),
      leafHashes: new Uint8Array(0),
      outcomes: new Uint8Array(0),
    })
  })

  it('hands readings to the workers in any visit order, results still by index', async () => {
    const { readings } = await mixedBatch()
    const local = checkReadingSignatures(readings, hashing.digest, hashing.keccak)
    const reversed = Uint32Array.from(readings, (_, i) => readings.length - 1 - i)
    const checks = await pool.check(readings, reversed)
    expect(Buffer.from(checks.digests).equals(Buffer.from(local.digests))).toBe(true)
    expect(Buffer.from(checks.leafHashes).equals(Buffer.from(local.leafHashes))).toBe(true)
    expect([...checks.outcomes]).toEqual([...local.outcomes])
    await expect(pool.check(readings, reversed.subarray(1))).rejects.toThrow(RangeError)
  })

  it('tells when every worker has loaded, and is no longer ready once closed', async () => {
    const starting = createSignatureCheckPool({
      chainId: CHAIN_ID,
      deviceRegistry: DEVICE_REGISTRY,
      threads: 2,
    })
    expect(starting.isReady()).toBe(false) // a worker takes a while to load its modules
    await starting.ready
    expect(starting.isReady()).toBe(true)
    await starting.close()
    expect(starting.isReady()).toBe(false)
  })

  it('fails pending and later checks once closed', async () => {
    const closing = createSignatureCheckPool({
      chainId: CHAIN_ID,
      deviceRegistry: DEVICE_REGISTRY,
      threads: 1,
    })
    const { readings } = await mixedBatch()
    const pending = expect(closing.check(readings)).rejects.toThrow(/closed/)
    await closing.close()
    await pending
    await expect(closing.check(readings)).rejects.toThrow(/closed/)
  })

  it('refuses nonsensical sizes', () => {
    expect(() =>
      createSignatureCheckPool({ chainId: CHAIN_ID, deviceRegistry: DEVICE_REGISTRY, threads: 0 }),
    ).toThrow(RangeError)
    expect(() =>
      createSignatureCheckPool({ chainId: CHAIN_ID, deviceRegistry: DEVICE_REGISTRY, chunkSize: 1.5 }),
    ).toThrow(RangeError)
  })
})
