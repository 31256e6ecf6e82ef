import { describe, expect, it } from 'vitest'
import type { SignedReading } from '../../readings/reading.ts'
import { orderReadings } from './orderReadings.ts'

const A = '0xAa00000000000000000000000000000000000001'
const B = '0x0b00000000000000000000000000000000000002'
const sig = (byte: string) => `0x${byte.repeat(65)}` as const
const reading = (
  device: string,
  seq: bigint,
  signature = sig('11'),
  time = 100n,
  values = [1n],
): SignedReading => ({
  device: device as `0x${string}`,
  seq,
  time,
  values,
  signature,
})

describe('orderReadings', () => {
  it('orders by lower-case device address, then seq, whatever the input order', () => {
    const batch = [reading(A, 2n), reading(B, 10n), reading(A, 1n), reading(B, 9n), reading(A, 11n)]
    const { readings, runs, sources, dropped } = orderReadings(batch)
    expect(readings.map((r) => `${r.device.slice(0, 4)}:${r.seq}`)).toEqual([
      '0x0b:9',
      '0x0b:10',
      '0xAa:1',
      '0xAa:2',
      '0xAa:11',
    ])
    expect(runs).toEqual([
      { device: B.toLowerCase(), start: 0, end: 2 },
      { device: A.toLowerCase(), start: 2, end: 5 },
    ])
    expect(dropped).toBe(0)
    expect([...sources]).toEqual([3, 1, 2, 0, 4])
    sources.forEach((source, p) => {
      expect(batch[source]).toBe(readings[p])
    })
  })

  it('gives for a batch already in canonical order what it gives for a shuffled copy, duplicates included', () => {
    // in order per device, so the sort is skipped; but for a run with a repeated seq
    const inOrder = [reading(A, 1n), reading(A, 2n), reading(A, 5n), reading(B, 3n), reading(B, 4n)]
    const withTwins = [reading(A, 1n, sig('22')), reading(A, 1n, sig('11')), reading(A, 2n), reading(B, 3n)]
    for (const batch of [inOrder, withTwins]) {
      const ordered = orderReadings(batch)
      const shuffled = [...batch].reverse()
      const fromShuffled = orderReadings(shuffled)
      expect(ordered.readings).toEqual(fromShuffled.readings)
      expect(ordered.runs).toEqual(fromShuffled.runs)
      expect(ordered.dropped).toBe(fromShuffled.dropped)
      ordered.sources.forEach((source, p) => {
        expect(batch[source]).toBe(ordered.readings[p])
      })
    }
    expect(orderReadings(withTwins).readings[0]?.signature).toBe(sig('11'))
    expect(orderReadings(withTwins).dropped).toBe(1)
  })

  it('groups one device however its address is spelled', () => {
    const { runs } = orderReadings([
      reading(A, 1n),
      reading(A.toLowerCase(), 2n),
      reading(A.toUpperCase().replace('0X', '0x'), 3n),
    ])
    expect(runs).toEqual([{ device: A.toLowerCase(), start: 0, end: 3 }])
  })

  it('keeps one reading per (device, seq): the lowest signature hex, case-insensitively', () => {
    const low = reading(A, 1n, sig('0a'), 100n)
    const high = reading(A, 1n, sig('0B'), 101n)
    const same = reading(A, 1n, sig('0A'), 100n)
    for (const batch of [
      [high, low, same],
      [same, high, low],
      [low, same, high],
    ]) {
      const { readings, sources, dropped } = orderReadings(batch)
      expect(readings).toHaveLength(1)
      expect(sources).toHaveLength(1)
      expect(readings[0]?.signature.toLowerCase()).toBe(sig('0a'))
      expect(dropped).toBe(2)
    }
  })

  it('breaks ties between equal signatures on content, never on arrival order', () => {
    const early = reading(A, 1n, sig('22'), 100n, [5n])
    const late = reading(A, 1n, sig('22'), 101n, [5n])
    const fewer = reading(A, 1n, sig('22'), 100n, [])
    const lowerValue = reading(A, 1n, sig('22'), 100n, [4n])
    const batches = [
      [early, late, fewer, lowerValue],
      [lowerValue, fewer, late, early],
      [late, lowerValue, early, fewer],
    ]
    for (const batch of batches) expect(orderReadings(batch).readings).toEqual([fewer])
    expect(orderReadings([early, late]).readings).toEqual([early])
    expect(orderReadings([late, lowerValue, early]).readings).toEqual([lowerValue])
  })
})
