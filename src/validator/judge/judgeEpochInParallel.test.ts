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

  it('keeps what the rules found while the signatures were checked only when every one is valid', async () => {
    // the mixed batch holds forged, malleable and malformed signatures: the rules, run first as if
    // all were valid, must run again; without them, the first run stands. Both equal judgeEpoch.
    const mixed = await input()
    const clean: JudgeEpochInput = {
      ...mixed,
      readings: mixed.readings.filter(
        (r) => !judgeEpoch(mixed).judged.some((j) => j.reading === r && /^SIGNATURE_/.test(reasonOf(j))),
      ),
    }
    for (const [base, signatureRejections] of [
      [mixed, true],
      [clean, false],
    ] as const) {
      const serial = judgeEpoch(base)
      const rejectedForSignature = Object.entries(serial.rejectedByReason)
        .filter(([reason]) => reason.startsWith('SIGNATURE_'))
        .reduce((sum, [, n]) => sum + n, 0)
      expect(rejectedForSignature > 0).toBe(signatureRejections)
      const parallel = await judgeEpochInParallel(base, pool)
      expect(parallel.readingsRoot).toBe(serial.readingsRoot)
      expect(parallel.devices).toEqual(serial.devices)
      expect(parallel.judged.map((j) => j.verdict)).toEqual(serial.judged.map((j) => j.verdict))
    }
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

const reasonOf = (judged: { verdict: { type: string; reason?: string } }): string =>
  judged.verdict.type === 'rejected' ? (judged.verdict.reason ?? '') : ''
