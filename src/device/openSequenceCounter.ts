import { existsSync, readFileSync } from 'node:fs'
import { ConfigError, DepinError } from '../errors.ts'
import { UINT64_MAX } from '../readings/reading.ts'
import { writeFileDurably } from './writeFileDurably.ts'

export type SequenceCounter = {
  /** The last number handed out (0n before the first). */
  last(): bigint
  /** Hands out the next number; with a file, it is durably recorded before this returns. */
  next(): bigint
}

/**
 * A device's sequence counter. Sequence numbers strictly increase per device, across restarts:
 * the gateway refuses a number at or below the last one it accepted (a replay). With a `path`,
 * every number is written durably (temp file, fsync, rename) before it is returned, so a crash
 * right after signing never hands the same number out twice. Without one it lives in memory and
 * starts at 1 on every start.
 * @param path the `<address>.seq` file; a missing file starts the count, a corrupt one is an error
 * @param options.atLeast the last number handed out elsewhere: the count goes on above it
 */
export function openSequenceCounter(path?: string, options: { atLeast?: bigint } = {}): SequenceCounter {
  const stored = path === undefined ? 0n : readLast(path)
  // a floor (numbers another counter handed out before) is never handed out again
  let last = options.atLeast !== undefined && options.atLeast > stored ? options.atLeast : stored
  return {
    last: () => last,
    // Synchronous on purpose: concurrent `sign` calls each get their own number, in call order.
    next() {
      if (last >= UINT64_MAX) {
        throw new DepinError('SEQUENCE_EXHAUSTED', 'the device has used every uint64 sequence number')
      }
      const seq = last + 1n
      if (path !== undefined) writeFileDurably(path, `${seq}\n`)
      last = seq
      return seq
    },
  }
}

function readLast(path: string): bigint {
  if (!existsSync(path)) return 0n
  const text = readFileSync(path, 'utf8').trim()
  // Stop loudly: guessing a number here could reuse one the gateway already accepted.
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > UINT64_MAX) {
    throw new ConfigError('SEQUENCE_FILE_CORRUPT', `${path} does not hold a sequence number`, {
      details: { path },
    })
  }
  return BigInt(text)
}
