import { existsSync, readFileSync } from 'node:fs'
import type { Address, Hex } from 'viem'
import { ConfigError } from '../errors.ts'
import { type SignedReading, signedReadingJsonSchema, toReadingJson } from '../readings/reading.ts'
import { appendFileDurably, writeFileDurably } from './writeFileDurably.ts'

export type ReadingQueue = {
  /** The waiting readings, oldest first. */
  readings(): readonly SignedReading[]
  size(): number
  /** Adds readings at the end; with a file, durably before this returns. */
  append(readings: readonly SignedReading[]): void
  /** Replaces the waiting readings (after the oldest ones were delivered). */
  replace(readings: readonly SignedReading[]): void
}

/**
 * A device's offline queue: signed readings the gateway has not answered for yet, oldest first,
 * stored as JSON lines (`toReadingJson`, one reading per line) in `<address>.queue`. Without a
 * path it lives in memory only.
 *
 * A crash while appending can leave a torn last line: it is dropped at load (that reading's send
 * never returned). A malformed line anywhere else is an error, never silently skipped.
 */
export function openReadingQueue(path?: string): ReadingQueue {
  let waiting: SignedReading[] = []
  if (path !== undefined) {
    const loaded = load(path)
    waiting = loaded.readings
    // rewrite a torn file, else the next append would glue a reading onto the torn line
    if (loaded.torn) writeFileDurably(path, lines(waiting))
  }
  return {
    readings: () => waiting,
    size: () => waiting.length,
    append(readings) {
      if (readings.length === 0) return
      if (path !== undefined) appendFileDurably(path, lines(readings))
      waiting = [...waiting, ...readings]
    },
    replace(readings) {
      if (path !== undefined) writeFileDurably(path, lines(readings))
      waiting = [...readings]
    },
  }
}

const lines = (readings: readonly SignedReading[]) =>
  readings.map((r) => `${JSON.stringify(toReadingJson(r))}\n`).join('')

function load(path: string): { readings: SignedReading[]; torn: boolean } {
  if (!existsSync(path)) return { readings: [], torn: false }
  const text = readFileSync(path, 'utf8')
  const rows = text.split('\n')
  const torn = text !== '' && !text.endsWith('\n') // a complete queue ends with a newline
  const readings: SignedReading[] = []
  rows.forEach((row, i) => {
    if (row === '') return
    let parsed: ReturnType<typeof signedReadingJsonSchema.safeParse> | undefined
    try {
      parsed = signedReadingJsonSchema.safeParse(JSON.parse(row))
    } catch {
      parsed = undefined
    }
    if (parsed?.success) {
      const r = parsed.data
      readings.push({
        device: r.device as Address,
        seq: r.seq,
        time: r.time,
        values: r.values,
        signature: r.signature as Hex,
      })
      return
    }
    if (torn && i === rows.length - 1) return
    throw new ConfigError('QUEUE_FILE_CORRUPT', `${path}: line ${i + 1} is not a signed reading`, {
      details: { path, line: i + 1 },
    })
  })
  return { readings, torn }
}
