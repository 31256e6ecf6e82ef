import { existsSync, readFileSync } from 'node:fs'
import { ConfigError } from '../errors.ts'
import { recordJsonSchema, type SignedReading, toRecordJson } from '../readings/reading.ts'
import { READING_KIND, type RecordKind } from '../readings/recordKinds.ts'
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
 * A device's offline queue: signed records the gateway has not answered for yet, oldest first,
 * stored as JSON lines (`toRecordJson` of the use case's `kinds`, one record per line) in
 * `<address>.queue`. Without a path it lives in memory only.
 *
 * A crash while appending can leave a torn last line: it is dropped at load (that reading's send
 * never returned). A malformed line anywhere else is an error, never silently skipped.
 */
export function openReadingQueue(path?: string, kinds: readonly RecordKind[] = [READING_KIND]): ReadingQueue {
  let waiting: SignedReading[] = []
  const lines = (readings: readonly SignedReading[]) =>
    readings.map((r) => `${JSON.stringify(toRecordJson(r, kinds))}\n`).join('')
  if (path !== undefined) {
    const loaded = load(path, kinds)
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

function load(path: string, kinds: readonly RecordKind[]): { readings: SignedReading[]; torn: boolean } {
  const schema = recordJsonSchema(kinds)
  if (!existsSync(path)) return { readings: [], torn: false }
  const text = readFileSync(path, 'utf8')
  const rows = text.split('\n')
  const torn = text !== '' && !text.endsWith('\n') // a complete queue ends with a newline
  const readings: SignedReading[] = []
  rows.forEach((row, i) => {
    if (row === '') return
    let parsed: ReturnType<typeof schema.safeParse> | undefined
    try {
      parsed = schema.safeParse(JSON.parse(row))
    } catch {
      parsed = undefined
    }
    if (parsed?.success) {
      readings.push(parsed.data)
      return
    }
    if (torn && i === rows.length - 1) return
    throw new ConfigError('QUEUE_FILE_CORRUPT', `${path}: line ${i + 1} is not a signed reading`, {
      details: { path, line: i + 1 },
    })
  })
  return { readings, torn }
}
