import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createValidatorStore } from './validatorStore.ts'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'depin-store-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const setVersion = (path: string, version: string, withResult: boolean) => {
  const db = new Database(path)
  db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(version)
  if (withResult) db.prepare("INSERT INTO epoch_results VALUES (1, '{}', '0x', '0x', '{}', '{}', '[]')").run()
  db.close()
}

describe('the validator store schema', () => {
  it('takes a schema-1 store that judged nothing, and refuses one whose reports lack a receipts root', () => {
    const empty = join(dir, 'empty.db')
    createValidatorStore(empty).close()
    setVersion(empty, '1', false)
    createValidatorStore(empty).close()
    const judged = join(dir, 'judged.db')
    createValidatorStore(judged).close()
    setVersion(judged, '1', true)
    expect(() => createValidatorStore(judged)).toThrow(expect.objectContaining({ code: 'STORE_SCHEMA_OLD' }))
  })

  it('refuses a store of a newer schema instead of relabelling it', () => {
    const path = join(dir, 'newer.db')
    createValidatorStore(path).close()
    setVersion(path, '3', false)
    expect(() => createValidatorStore(path)).toThrow(expect.objectContaining({ code: 'STORE_SCHEMA_NEWER' }))
    const db = new Database(path)
    expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe('3')
    db.close()
  })

  it("tells whether settled epochs accepted a device's reading in a time span, and gives the roots and batches of a result without its amounts", () => {
    const store = createValidatorStore(join(dir, 'judged.db'))
    const root = (b: string) => `0x${b.repeat(32)}` as const
    const device = `0x${'aa'.repeat(20)}` as const
    store.saveResult(
      {
        epoch: 4n,
        report: {
          epoch: 4n,
          rulesHash: root('01'),
          readingsRoot: root('02'),
          rewardsRoot: root('03'),
          receiptsRoot: root('04'),
          total: 5n,
          accepted: 1,
        },
        digest: root('05'),
        signature: `0x${'06'.repeat(65)}`,
        cumulative: new Map([['0xowner', 5n]]),
        rejectedByReason: {},
        batchHashes: [root('07')],
      },
      [
        { device, seq: 1n, status: 'accepted', reason: null },
        { device, seq: 2n, status: 'rejected', reason: 'STUCK_VALUE' },
      ],
      [{ reading: { device, seq: 1n, time: 130n, values: [1n], signature: root('08') }, digest: root('09') }],
    )
    expect(store.acceptedBetween(device, 120n, 150n, [4n])).toBe(true)
    expect(store.acceptedBetween(device, 120n, 150n, [2n, 3n, 4n])).toBe(true)
    expect(store.acceptedBetween(device, 131n, 150n, [4n])).toBe(false) // the span ends before 130 or starts after
    expect(store.acceptedBetween(device, 100n, 130n, [4n])).toBe(false)
    expect(store.acceptedBetween(device, 120n, 150n, [3n, 5n])).toBe(false) // another epoch's
    expect(store.acceptedBetween(`0x${'bb'.repeat(20)}`, 120n, 150n, [4n])).toBe(false)
    expect(store.judgedOn(4n)).toEqual({
      readingsRoot: root('02'),
      receiptsRoot: root('04'),
      batchHashes: [root('07')],
    })
    expect(store.judgedOn(5n)).toBeUndefined()
    store.close()
  })
})
