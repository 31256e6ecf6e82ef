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

  it('tells which (device, seq) an epoch judged, and gives the roots and batches of a result without its amounts', () => {
    const store = createValidatorStore(join(dir, 'judged.db'))
    const root = (b: string) => `0x${b.repeat(32)}` as const
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
        { device: '0xaa', seq: 1n, status: 'accepted', reason: null },
        { device: '0xaa', seq: 2n, status: 'rejected', reason: 'STUCK_VALUE' },
      ],
    )
    expect(store.judgedIn(4n, '0xaa', 1n)).toBe(true)
    expect(store.judgedIn(4n, '0xaa', 2n)).toBe(true) // refused counts as judged
    expect(store.judgedIn(4n, '0xaa', 3n)).toBe(false)
    expect(store.judgedIn(5n, '0xaa', 1n)).toBe(false)
    expect(store.judgedOn(4n)).toEqual({
      readingsRoot: root('02'),
      receiptsRoot: root('04'),
      batchHashes: [root('07')],
    })
    expect(store.judgedOn(5n)).toBeUndefined()
    store.close()
  })
})
