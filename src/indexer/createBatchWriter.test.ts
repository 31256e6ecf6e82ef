import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type Address, type Hex, zeroAddress } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { createBatchWriter } from './createBatchWriter.ts'
import { createIndexerStore } from './indexerStore.ts'
import { INDEXER_SCHEMA_VERSION, openIndexerDatabase } from './openIndexerDatabase.ts'
import type { ProtocolEvent } from './readProtocolEvents.ts'

const dir = mkdtempSync(join(tmpdir(), 'depin-indexer-unit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const dbPath = () => join(dir, `unit-${++files}.sqlite`)

const device = '0x1111111111111111111111111111111111111111' as Address
const owner = '0x2222222222222222222222222222222222222222' as Address
const txHash = `0x${'01'.repeat(32)}` as Hex
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex
const at = (block: bigint, logIndex = 0) => ({ block, logIndex, blockTimestamp: 1_000n + block, txHash })

const registered: ProtocolEvent = {
  ...at(10n),
  type: 'deviceRegistered',
  device,
  owner,
  deviceClass: 1,
  h3Cell: 0x881f1d4887fffffn,
  maker: zeroAddress,
}

describe('createBatchWriter', () => {
  it('commits a range and its cursor together, or nothing of it', () => {
    const db = openIndexerDatabase(dbPath())
    const store = createIndexerStore(db)
    const write = createBatchWriter(db)
    const stranger = '0x3333333333333333333333333333333333333333' as Address
    const transferOfUnknown: ProtocolEvent = {
      ...at(11n),
      type: 'deviceTransferred',
      device: stranger,
      from: owner,
      to: owner,
    }
    expect(() =>
      write({
        events: [registered, transferOfUnknown],
        cursor: { block: 11n, hash: hash(11), timestamp: 1_011n },
      }),
    ).toThrow(expect.objectContaining({ code: 'INDEXER_INCONSISTENT' }))
    expect(store.lastProcessed()).toBeUndefined()
    expect(store.deviceCount()).toBe(0)

    write({ events: [registered], cursor: { block: 10n, hash: hash(10), timestamp: 1_010n } })
    expect(store.lastProcessed()).toEqual({ block: 10n, timestamp: 1_010n })
    expect(store.getDevice(device)?.owner).toBe(owner)
    store.close()
  })

  it('refuses events that do not follow the stored state', () => {
    const db = openIndexerDatabase(dbPath())
    const write = createBatchWriter(db)
    const cursor = { block: 10n, hash: hash(10), timestamp: 1_010n }
    write({ events: [registered], cursor })
    const cases: ProtocolEvent[] = [
      { ...registered, ...at(11n) },
      { ...at(11n), type: 'deviceTransferred', device, from: device, to: owner },
      { ...at(11n), type: 'deviceRelocated', device, fromCell: 1n, toCell: 2n },
      { ...at(11n), type: 'validatorLeft', validator: owner, unbondingEnds: 5n },
    ]
    for (const event of cases) {
      expect(() => write({ events: [event], cursor: { ...cursor, block: 11n } })).toThrow(
        expect.objectContaining({ code: 'INDEXER_INCONSISTENT' }),
      )
    }
    db.close()
  })
})

describe('openIndexerDatabase', () => {
  it('uses WAL, records the schema version, and refuses a newer schema', () => {
    const path = dbPath()
    const db = openIndexerDatabase(path)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('synchronous', { simple: true })).toBe(1n) // NORMAL
    db.close()
    // reopening an existing database keeps it
    openIndexerDatabase(path).close()

    const raw = new Database(path)
    raw
      .prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'")
      .run(String(INDEXER_SCHEMA_VERSION + 1))
    raw.close()
    expect(() => openIndexerDatabase(path)).toThrow(
      expect.objectContaining({ code: 'INDEXER_SCHEMA_MISMATCH' }),
    )
  })

  it('empties a version 2 database, which kept no validator history, so that it indexes again from the start', () => {
    const path = dbPath()
    const db = openIndexerDatabase(path)
    createBatchWriter(db)({ events: [registered], cursor: { block: 10n, hash: hash(10), timestamp: 1_010n } })
    db.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run()
    db.close()

    const store = createIndexerStore(openIndexerDatabase(path))
    expect(store.lastProcessed()).toBeUndefined()
    expect(store.deviceCount()).toBe(0)
    store.close()
    const raw = new Database(path)
    expect(raw.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe(
      String(INDEXER_SCHEMA_VERSION),
    )
    raw.close()
  })
})
