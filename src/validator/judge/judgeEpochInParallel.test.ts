import { bytesToHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSignatureCheckPool, type SignatureCheckPool } from './createSignatureCheckPool.ts'
import { type JudgeEpochInput, judgeEpoch } from './judgeEpoch.ts'
import { judgeEpochInParallel } from './judgeEpochInParallel.ts'
import {
  CHAIN_ID,
  DEVICE_REGISTRY,
  EPOCH_END,
  EPOCH_START,
  environment,
  loadJudgeHashing,
  mixedBatch,
  registryOf,
  shuffled,
} from './testFleet.ts'

let pool: SignatureCheckPool
beforeAll(() => {
  pool = createSignatureCheckPool({
    chainId: CHAIN_ID,
    deviceRegistry: DEVICE_REGISTRY,
    threads: 2,
    chunkSize: 8,
  })
})
afterAll(() => pool.close())

async function input(): Promise<JudgeEpochInput> {
  const { stations, readings } = await mixedBatch()
  return {
    blueprint: environment,
    epoch: 7n,
    epochStart: EPOCH_START,
    epochEnd: EPOCH_END,
    readings: shuffled(readings, 5),
    devices: registryOf(stations.filter((s) => s.name !== 'm-stranger')),
    ...(await loadJudgeHashing()),
  }
}

describe('judgeEpochInParallel', () => {
  it('gives exactly what judgeEpoch gives', async () => {
    const base = await input()
    const parallel = await judgeEpochInParallel(base, pool)
    const serial = judgeEpoch(base)
    expect(parallel.readingsRoot).toBe(serial.readingsRoot)
    expect(parallel.devices).toEqual(serial.devices)
    expect(parallel.rejectedByReason).toEqual(serial.rejectedByReason)
    expect(parallel.judged.map((j) => [j.reading, bytesToHex(j.digest), j.verdict])).toEqual(
      serial.judged.map((j) => [j.reading, bytesToHex(j.digest), j.verdict]),
    )
    expect(parallel.accepted).toBeGreaterThan(0)
  })

  it('stops loudly when the pool hashes in another domain than the judge', async () => {
    const elsewhere = createSignatureCheckPool({
      chainId: CHAIN_ID + 1,
      deviceRegistry: DEVICE_REGISTRY,
      threads: 1,
    })
    try {
      await expect(judgeEpochInParallel(await input(), elsewhere)).rejects.toThrow(/another EIP-712 domain/)
    } finally {
      await elsewhere.close()
    }
  })
})
