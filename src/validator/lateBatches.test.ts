import { describe, expect, it } from 'vitest'
import { judgeEpoch } from './judge/judgeEpoch.ts'
import {
  EPOCH_END,
  EPOCH_START,
  environment,
  honestReadings,
  loadJudgeHashing,
  registryOf,
  sign,
  station,
  type TestStation,
  TYPICAL,
} from './judge/testFleet.ts'
import { dropJudgedBefore, LATE_BATCH_EPOCHS, lateEpochsOf } from './lateBatches.ts'

/** Six readings of a station in the epoch after EPOCH_START's, seq 1..6, 5 s apart, values varying. */
const nextEpochReadings = (s: TestStation) =>
  Promise.all(
    Array.from({ length: 6 }, (_, k) =>
      sign(
        s,
        BigInt(k + 1),
        30n + BigInt(k * 5),
        TYPICAL.map((v) => v + BigInt(k)),
      ),
    ),
  )

describe('late batches', () => {
  it('an epoch may count late batches of the LATE_BATCH_EPOCHS epochs before it, none before epoch 0', () => {
    expect(lateEpochsOf(0n)).toEqual([])
    expect(lateEpochsOf(2n)).toEqual([0n, 1n])
    const window = lateEpochsOf(100n)
    expect(window).toHaveLength(Number(LATE_BATCH_EPOCHS))
    expect(window[0]).toBe(100n - LATE_BATCH_EPOCHS)
    expect(window.at(-1)).toBe(99n)
  })

  it('drops readings from before the epoch judged in a settled epoch, and looks up no reading of the epoch itself', async () => {
    const a = station('late-a', 'mitte')
    const earlier = await honestReadings(a) // seq 1..6, times EPOCH_START + 0..25
    const own = await nextEpochReadings(station('late-b', 'mitte'))
    const asked: bigint[] = []
    const kept = dropJudgedBefore([...earlier, ...own], EPOCH_START + 30n, (device, seq) => {
      asked.push(seq)
      expect(device).toBe(a.record.device.toLowerCase())
      return seq % 2n === 0n // seq 2, 4, 6 were judged before
    })
    expect(kept.dropped).toBe(3)
    expect(kept.readings.map((r) => r.seq)).toEqual([1n, 3n, 5n, 1n, 2n, 3n, 4n, 5n, 6n])
    expect(asked).toEqual([1n, 2n, 3n, 4n, 5n, 6n])
  })

  it("widens the environment's epoch window back to recordsFrom, and no further", async () => {
    const hashing = await loadJudgeHashing()
    const s = station('late-c', 'mitte')
    const previous = await honestReadings(s) // the epoch before, seq 1..6
    const next = station('late-d', 'mitte')
    const current = await nextEpochReadings(next)
    const judge = (recordsFrom?: bigint) =>
      judgeEpoch({
        blueprint: environment,
        epoch: 1n,
        epochStart: EPOCH_START + 30n,
        epochEnd: EPOCH_END + 30n,
        ...(recordsFrom === undefined ? {} : { recordsFrom }),
        readings: [...previous, ...current],
        devices: registryOf([s, next]),
        ...hashing,
      })
    const verdictOf = (result: ReturnType<typeof judge>, device: string) =>
      result.judged
        .filter((j) => j.reading.device.toLowerCase() === device.toLowerCase())
        .map((j) => (j.verdict.type === 'accepted' ? 'accepted' : j.verdict.reason))
    const own = judge()
    expect(verdictOf(own, s.record.device)).toEqual(Array(6).fill('OUTSIDE_EPOCH'))
    expect(verdictOf(own, next.record.device)).toEqual(Array(6).fill('accepted'))
    const widened = judge(EPOCH_START)
    expect(verdictOf(widened, s.record.device)).toEqual(Array(6).fill('accepted'))
    expect(verdictOf(widened, next.record.device)).toEqual(Array(6).fill('accepted'))
    expect(widened.readingsRoot).not.toBe(own.readingsRoot)
    // one second short of the late readings' first: that one stays outside
    const short = judge(EPOCH_START + 1n)
    expect(verdictOf(short, s.record.device)[0]).toBe('OUTSIDE_EPOCH')
  })
})
