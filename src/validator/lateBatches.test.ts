import { describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { compareReadings, encodeBatch } from '../gateway/batchFormat.ts'
import type { SignedReading } from '../readings/reading.ts'
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
import { dropCountedBefore, LATE_BATCH_EPOCHS, lateEpochsOf, ownEpochReadings } from './lateBatches.ts'

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

  it("drops a device's late readings of an epoch in which a settled epoch accepted one of its readings, asking once per device and epoch", async () => {
    const split = station('late-a', 'mitte') // half its stream came on time through another gateway
    const alone = station('late-e', 'mitte') // its only gateway was the late one
    const earlier = [...(await honestReadings(split)), ...(await honestReadings(alone))] // epoch 0
    const own = await nextEpochReadings(station('late-b', 'mitte')) // epoch 1
    const asked: string[] = []
    const kept = dropCountedBefore(
      [...earlier, ...own],
      EPOCH_START + 30n,
      (time) => (time - EPOCH_START) / 30n,
      (device, epoch) => {
        asked.push(`${device}:${epoch}`)
        return device === split.record.device.toLowerCase() && epoch === 0n
      },
    )
    expect(kept.dropped).toBe(6)
    expect(kept.readings).toEqual([...earlier.slice(6), ...own])
    expect(asked.sort()).toEqual([split, alone].map((s) => `${s.record.device.toLowerCase()}:0`).sort())
  })

  it('keeps each batch to readings of its own epoch once late batches are in the input, and lets a late batch of a use case that counts none bring nothing', async () => {
    const keccak = await loadKeccak256()
    const s = station('late-f', 'mitte')
    const epoch0 = await honestReadings(s) // times in epoch 0
    const epoch1 = await nextEpochReadings(s) // seq 1..6 again, times in epoch 1: only order matters here
    const windowOf = (e: bigint) => ({ start: EPOCH_START + 30n * e, end: EPOCH_START + 30n * (e + 1n) })
    const batch = (epoch: bigint, readings: SignedReading[]) => ({
      ...encodeBatch(keccak, epoch, [...readings].sort(compareReadings)),
      epoch,
      readings,
    })
    // the late batch of epoch 0 also carries epoch-1 readings; epoch 1's batch carries back-dated ones
    const late = batch(0n, [...epoch0.slice(0, 3), ...epoch1.slice(3)])
    const current = batch(1n, [...epoch0.slice(3), ...epoch1.slice(0, 3)])
    const cut = ownEpochReadings(1n, [late, current], windowOf, true)
    expect(cut[0]?.readings).toEqual(epoch0.slice(0, 3))
    expect(cut[1]?.readings).toEqual(epoch1.slice(0, 3))
    // without a late batch, nothing is cut: the rules refuse what lies outside the epoch, as before
    expect(ownEpochReadings(1n, [current], windowOf, true)[0]?.readings).toEqual(current.readings)
    // a use case that counts no late records: its late batches bring nothing
    expect(ownEpochReadings(1n, [late, current], windowOf, false)[0]?.readings).toEqual([])
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
