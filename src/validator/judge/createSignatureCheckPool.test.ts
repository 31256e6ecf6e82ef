import { type Hex, keccak256, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createReadingHasher } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { READING_KIND, type RecordKind } from '../../readings/recordKinds.ts'
import { signRecord } from '../../readings/signReading.ts'
import { checkReadingSignatures, SIGNATURE_OUTCOMES } from './checkReadingSignatures.ts'
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

  it('packs every kind of malformed record for the workers as checking on this thread judges it', async () => {
    // a kind of single-word fields beside the array kind: every field type the pipeline knows
    const PROBE: RecordKind = {
      name: 'Probe',
      fields: [
        { name: 'a', type: 'uint64' },
        { name: 'b', type: 'int64' },
        { name: 'c', type: 'uint32' },
        { name: 'd', type: 'int32' },
        { name: 'e', type: 'bytes32' },
      ],
    }
    const kinds = [READING_KIND, PROBE]
    const account = privateKeyToAccount(keccak256(toHex('pool-probe')))
    const signed = (kind: number, seq: bigint, values: bigint[]): Promise<SignedReading> =>
      signRecord({
        account,
        chainId: CHAIN_ID,
        deviceRegistry: DEVICE_REGISTRY,
        kinds,
        kind,
        seq,
        time: 1_764_200_000n + seq,
        values,
      })
    const good = await signed(0, 1n, [-5n, 0n, 7n, -(1n << 63n)])
    const probe = await signed(1, 2n, [
      (1n << 64n) - 1n,
      -1n,
      4_000_000_000n,
      -2_000_000_000n,
      (1n << 256n) - 1n,
    ])
    const withV = (reading: SignedReading, v: number): SignedReading => ({
      ...reading,
      signature: `${reading.signature.slice(0, 130)}${v.toString(16).padStart(2, '0')}` as Hex,
    })
    const v = Number.parseInt(good.signature.slice(130), 16)
    const weird = (fields: Record<string, unknown>) => ({ ...good, ...fields }) as unknown as SignedReading
    const records: SignedReading[] = [
      good,
      probe,
      { ...good, device: good.device.toUpperCase().replace('0X', '0x') as Hex }, // another spelling
      { ...good, signature: good.signature.toUpperCase().replace('0X', '0x') as Hex },
      withV(good, v - 27), // v as 0/1
      withV(good, 29), // no such recovery id
      { ...good, signature: `0x${'00'.repeat(64)}1b` }, // r = s = 0: recovers nothing
      { ...good, seq: 99n }, // signed for other content
      { ...good, kind: 1, values: [1n, 2n, 3n, 4n, 5n] }, // a Reading's signature on a Probe
      weird({ signature: '0x1234' }),
      weird({ signature: 42 }),
      weird({ device: '0x1234' }),
      weird({ seq: 1 }),
      weird({ seq: -1n }),
      weird({ time: 1n << 64n }),
      weird({ values: [1n, 2] }),
      weird({ values: 'none' }),
      weird({ values: [1n << 63n] }), // outside int64
      weird({ kind: 2 }), // no such kind
      weird({ kind: 1.5 }),
      { ...probe, values: [1n, 2n, 3n, 4n] }, // one value short
      { ...probe, values: [1n, 2n, 1n << 32n, 4n, 5n] }, // c outside uint32
      { ...probe, values: [1n, 2n, 3n, -(1n << 31n) - 1n, 5n] }, // d outside int32
      { ...probe, values: [1n, 2n, 3n, 4n, 1n << 256n] }, // e outside bytes32
    ]
    const probing = createSignatureCheckPool({
      chainId: CHAIN_ID,
      deviceRegistry: DEVICE_REGISTRY,
      kinds,
      threads: 1,
      chunkSize: 7,
    })
    try {
      const digest = await createReadingHasher(CHAIN_ID, DEVICE_REGISTRY, kinds)
      const local = checkReadingSignatures(records, digest, hashing.keccak)
      const pooled = await probing.check(records)
      expect(Buffer.from(pooled.digests).equals(Buffer.from(local.digests))).toBe(true)
      expect(Buffer.from(pooled.leafHashes).equals(Buffer.from(local.leafHashes))).toBe(true)
      const outcomes = [...pooled.outcomes].map((o) => SIGNATURE_OUTCOMES[o])
      expect(outcomes).toEqual([...local.outcomes].map((o) => SIGNATURE_OUTCOMES[o]))
      // the cases do what they say: not one of them slips through as a pass or a wrong reason
      expect(outcomes.slice(0, 5)).toEqual(['VALID', 'VALID', 'VALID', 'VALID', 'VALID'])
      expect(outcomes.slice(5, 9)).toEqual([
        'SIGNATURE_MALFORMED',
        'SIGNATURE_INVALID',
        'SIGNATURE_INVALID',
        'SIGNATURE_INVALID',
      ])
      expect(outcomes.slice(9).every((o) => o === 'SIGNATURE_MALFORMED')).toBe(true)
      // digests and leaves of what hashes (the wrong signatures too), zeros for what does not
      expect(pooled.digests.subarray(9 * 32, 10 * 32).some((b) => b !== 0)).toBe(true)
      expect(pooled.digests.subarray(11 * 32).every((b) => b === 0)).toBe(true)
    } finally {
      await probing.close()
    }
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
