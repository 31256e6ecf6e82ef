import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Address, Hex } from 'viem'
import { afterEach, describe, expect, it } from 'vitest'
import { postgresTestDatabase } from '../../test/helpers/testDatabase.ts'
import type { SignedReading } from '../readings/reading.ts'
import { type GatewayStore, openGatewayStore } from './gatewayStore.ts'

const device = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address
const signature = (n: number) => `0x${n.toString(16).padStart(130, 'a')}` as Hex
const reading = (d: number, seq: bigint, extra: Partial<SignedReading> = {}): SignedReading => ({
  device: device(d),
  seq,
  time: 1_700_000_000n,
  values: [-5n, 9_223_372_036_854_775_807n],
  signature: signature(d * 1000 + Number(seq % 1000n)),
  ...extra,
})

const opened: GatewayStore[] = []
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => {})
})
const open = async (target: string) => {
  const store = await openGatewayStore(target)
  opened.push(store)
  return store
}

const dialects: Array<[string, () => string]> = [
  ['SQLite', () => join(mkdtempSync(join(tmpdir(), 'depin-gwstore-')), 'gateway.db')],
  ['PostgreSQL', () => postgresTestDatabase('gwstore')],
]

describe.each(dialects)('the gateway store on %s', (_, newTarget) => {
  it('keeps readings and batches, in the canonical (bytewise) order, across a reopen', async () => {
    const target = newTarget()
    const store = await open(target)
    // arrival order is not canonical order: the store sorts by device, then seq
    await store.append([
      { epoch: 7n, reading: reading(0xb, 2n) },
      { epoch: 7n, reading: reading(0xa, 10n, { kind: 1 }) },
      { epoch: 7n, reading: reading(0xa, 9n) },
      { epoch: 8n, reading: reading(0xa, 11n) },
    ])
    await store.append([{ epoch: 7n, reading: reading(0xb, 18_446_744_073_709_551_615n) }])
    await store.saveBatch(
      { epoch: 7n, hash: `0x${'12'.repeat(32)}`, count: 4, bytes: new Uint8Array([1, 2, 3]) },
      99n,
    )
    await store.setMeta('first_epoch', '6')
    await store.close()
    opened.pop()

    const again = await open(target)
    const epoch7 = await again.epochReadings(7n)
    expect(epoch7.map((r) => `${r.device.slice(-1)}:${r.seq}:${r.kind ?? 0}`)).toEqual([
      'a:9:0',
      'a:10:1',
      'b:2:0',
      'b:18446744073709551615:0',
    ])
    expect(epoch7[0]).toEqual(reading(0xa, 9n))
    expect(await again.readingCount()).toBe(5)
    expect(await again.lastAccepted()).toEqual(
      new Map([
        [device(0xa), { seq: 11n, signature: signature(0xa * 1000 + 11) }],
        [
          device(0xb),
          {
            seq: 18_446_744_073_709_551_615n,
            signature: reading(0xb, 18_446_744_073_709_551_615n).signature,
          },
        ],
      ]),
    )
    const batch = await again.batch(7n)
    expect(batch).toEqual({
      epoch: 7n,
      hash: `0x${'12'.repeat(32)}`,
      count: 4,
      sealedAt: 99n,
      bytes: new Uint8Array([1, 2, 3]),
    })
    expect(await again.batchByHash(`0x${'12'.repeat(32)}`)).toEqual(batch)
    expect(await again.batch(8n)).toBeUndefined()
    expect(await again.batches()).toEqual([
      { epoch: 7n, hash: `0x${'12'.repeat(32)}`, count: 4, sealedAt: 99n },
    ])
    expect(await again.lastSealedEpoch()).toBe(7n)
    expect(await again.getMeta('first_epoch')).toBe('6')
    expect(await again.getMeta('absent')).toBeUndefined()
  })

  it('stores nothing of a batch a write fails in (one transaction)', async () => {
    const store = await open(newTarget())
    await store.saveBatch({ epoch: 1n, hash: `0x${'34'.repeat(32)}`, count: 0, bytes: new Uint8Array() }, 1n)
    // the same epoch again breaks the primary key: nothing of the second batch is kept
    await expect(
      store.saveBatch({ epoch: 1n, hash: `0x${'56'.repeat(32)}`, count: 0, bytes: new Uint8Array() }, 2n),
    ).rejects.toThrow()
    expect(await store.batchByHash(`0x${'56'.repeat(32)}`)).toBeUndefined()
    // a reading whose seq is past uint64 fits no column: the rows with it are refused together
    await expect(
      store.append([
        { epoch: 1n, reading: reading(1, 1n) },
        { epoch: 1n, reading: reading(2, 1n, { time: 1n << 64n }) },
      ]),
    ).rejects.toThrow()
    expect(await store.readingCount()).toBe(0)
  })

  it('opens one schema from two processes starting together, migrating it once', async () => {
    const target = newTarget()
    const [a, b] = await Promise.all([open(target), open(target)])
    await a.append([{ epoch: 1n, reading: reading(1, 1n) }])
    expect(await b.readingCount()).toBe(1)
  })
})

describe('a gateway store written by an older depin', () => {
  it('is brought forward: the record kind column added, its readings kept', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'depin-gwstore-old-')), 'gateway.db')
    // the schema of the first gateways: no kind, no schema_migrations
    const old = new Database(path)
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE readings (id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, device TEXT NOT NULL,
        seq TEXT NOT NULL, time INTEGER NOT NULL, reading_values TEXT NOT NULL, signature TEXT NOT NULL,
        received_at INTEGER NOT NULL);
      CREATE TABLE batches (epoch INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, count INTEGER NOT NULL,
        sealed_at INTEGER NOT NULL, bytes BLOB NOT NULL);
      INSERT INTO meta VALUES ('schema_version', '1');
    `)
    old
      .prepare('INSERT INTO readings VALUES (1, 3, ?, ?, 5, ?, ?, 0)')
      .run(device(1), '00000000000000000004', '["1","2"]', signature(1))
    old.close()
    const store = await open(path)
    expect(await store.epochReadings(3n)).toEqual([
      { device: device(1), seq: 4n, time: 5n, values: [1n, 2n], signature: signature(1) },
    ])
    await store.append([{ epoch: 3n, reading: reading(2, 1n, { kind: 2 }) }])
    expect((await store.epochReadings(3n)).map((r) => r.kind)).toEqual([undefined, 2])
  })
})

describe.each(dialects)('a gateway store on %s written by a newer depin', (_, newTarget) => {
  it('is refused with STORE_SCHEMA_NEWER, untouched', async () => {
    const target = newTarget()
    const store = await open(target)
    await store.close()
    opened.pop()
    if (target.startsWith('postgres')) {
      const { default: pg } = await import('pg')
      const url = new URL(target)
      const schema = url.searchParams.get('schema')
      url.searchParams.delete('schema')
      const client = new pg.Client({ connectionString: url.toString() })
      await client.connect()
      await client.query(`INSERT INTO ${schema}.schema_migrations VALUES (99, 'future', 0)`)
      await client.end()
    } else {
      const db = new Database(target)
      db.prepare("INSERT INTO schema_migrations VALUES (99, 'future', 0)").run()
      db.close()
    }
    await expect(openGatewayStore(target)).rejects.toMatchObject({ code: 'STORE_SCHEMA_NEWER' })
  })
})
