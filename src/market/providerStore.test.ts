/**
 * The provider store: answers recorded through its writer worker, each with its own outcome, the
 * served commitment the writer folds equal to the voucher's (extendServed), vouchers recorded only
 * while they settle the channel, the schema 1 → 2 migration, and what a closed store refuses.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type Address, keccak256, toHex } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { createProviderWrites, openProviderDatabase, openProviderStore } from './providerStore.ts'
import { extendServed, NOTHING_SERVED, type SignedVoucher } from './voucher.ts'

const dir = mkdtempSync(join(tmpdir(), 'depin-provider-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const provider: Address = '0x00000000000000000000000000000000000000aa'
const [a, b, c, d] = ['a1', 'b2', 'c3', 'd4'].map((x) => `0x${x.repeat(20)}` as Address) as [
  Address,
  Address,
  Address,
  Address,
]
const voucherOf = (consumer: Address, cumulativeAmount = 0n, served = NOTHING_SERVED, servedCount = 0n) =>
  ({
    consumer,
    provider,
    cumulativeAmount,
    served,
    servedCount,
    signature: `0x${'11'.repeat(65)}`,
  }) satisfies SignedVoucher
const reading = (i: number, device: Address = '0x00000000000000000000000000000000000000d1') => ({
  epoch: 3n + BigInt(i % 2),
  digest: keccak256(toHex(`reading ${i}`)),
  device,
})
const start = { owed: 0n, servedCount: 0n }

describe('the provider store', () => {
  it('records the answers sent together, each with its own outcome, the commitment folded as the voucher does', async () => {
    const keccak = await loadKeccak256()
    const store = openProviderStore(join(dir, 'provider.db'))
    const answer = (consumer: Address, readings: ReturnType<typeof reading>[], owed: bigint) => ({
      voucher: voucherOf(consumer),
      owed,
      readings,
    })
    const notHex = { ...reading(5), digest: `0x${'zz'.repeat(32)}` as const }
    const outcomes = await Promise.allSettled([
      store.recordAnswer(start, answer(a, [reading(0), reading(1)], 2n)),
      store.recordAnswer(start, answer(b, [reading(2)], 1n)),
      // the same consumer again from the same state: another answer moved it on first
      store.recordAnswer(start, answer(a, [reading(3)], 1n)),
      // one without a device fails alone, before it reaches the writer
      store.recordAnswer(start, answer(c, [reading(4, null as unknown as Address)], 1n)),
      // one whose digest is not hex fails alone, in the writer
      store.recordAnswer(start, answer(d, [notHex], 1n)),
    ])
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).name))).toEqual([
      {
        served: extendServed(keccak, NOTHING_SERVED, [reading(0).digest, reading(1).digest]),
        servedCount: 2n,
      },
      { served: extendServed(keccak, NOTHING_SERVED, [reading(2).digest]), servedCount: 1n },
      undefined,
      'RangeError',
      'RangeError',
    ])
    expect(store.channel(a)).toMatchObject({ owed: 2n, servedCount: 2n })
    expect(store.served(a, 0n, 5n)).toEqual([
      { position: 0n, ...reading(0) },
      { position: 1n, ...reading(1) },
    ])
    for (const nothing of [c, d]) {
      expect(store.channel(nothing)).toMatchObject({ owed: 0n, servedCount: 0n, voucher: undefined })
      expect(store.served(nothing, 0n, 5n)).toEqual([])
    }

    // a second answer extends the commitment from where the first left it
    const first = store.channel(a)
    const second = await store.recordAnswer(
      { owed: first.owed, servedCount: first.servedCount },
      { voucher: voucherOf(a, 2n, first.served, 2n), owed: 3n, readings: [reading(6)] },
    )
    expect(second).toEqual({
      served: extendServed(keccak, NOTHING_SERVED, [reading(0).digest, reading(1).digest, reading(6).digest]),
      servedCount: 3n,
    })
    expect(store.served(a, 1n, 3n).map((r) => r.position)).toEqual([1n, 2n])
    await store.close()

    // on disk: a reopened store has them
    const reopened = openProviderStore(join(dir, 'provider.db'))
    expect(reopened.channel(a)).toMatchObject({ owed: 3n, served: second?.served, servedCount: 3n })
    expect(reopened.channel(b)).toMatchObject({ owed: 1n, servedCount: 1n })
    expect(reopened.consumers().sort()).toEqual([a, b])
    await reopened.close()
  })

  it('leaves nothing of a write that fails halfway, inside a commit of others', async () => {
    const db = openProviderDatabase(join(dir, 'halfway.db'))
    const writes = createProviderWrites(db, await loadKeccak256())
    const write = (voucher: SignedVoucher) => ({
      expected: start,
      voucher,
      owed: 1n,
      epochs: new BigUint64Array([3n]),
      digests: reading(0).digest.slice(2),
      devices: reading(0).device.slice(2),
    })
    // the voucher fails to serialise after the answer's row went in: that row must go too
    const broken = { ...voucherOf(b), cumulativeAmount: undefined as unknown as bigint }
    db.transaction(() => {
      expect(writes.recordAnswer(write(voucherOf(a)))).toMatchObject({ servedCount: 1n })
      expect(() => writes.recordAnswer(write(broken))).toThrow()
    })()
    const answers = db.prepare('SELECT consumer FROM answers ORDER BY consumer').all()
    expect(answers).toEqual([{ consumer: a.toLowerCase() }])
    expect(db.prepare('SELECT consumer FROM channels').all()).toEqual([{ consumer: a.toLowerCase() }])
    db.close()
  })

  it('records a voucher only while it settles the channel exactly, and a closed store writes nothing', async () => {
    const store = openProviderStore(join(dir, 'vouchers.db'))
    await store.recordAnswer(start, { voucher: voucherOf(a), owed: 5n, readings: [reading(0)] })
    const channel = store.channel(a)
    const settling = voucherOf(a, 5n, channel.served, 1n)
    expect(await store.recordVoucher({ ...settling, cumulativeAmount: 4n })).toBe(false)
    expect(await store.recordVoucher({ ...settling, servedCount: 0n })).toBe(false)
    expect(await store.recordVoucher({ ...settling, served: NOTHING_SERVED })).toBe(false)
    expect(store.channel(a).voucher).toEqual(voucherOf(a))
    expect(await store.recordVoucher(settling)).toBe(true)
    expect(store.channel(a)).toEqual({ ...channel, voucher: settling })
    // a consumer that was never served settles with the empty voucher
    expect(await store.recordVoucher(voucherOf(b))).toBe(true)
    expect(store.channel(b).voucher).toEqual(voucherOf(b))

    await store.close()
    await expect(
      store.recordAnswer(start, { voucher: voucherOf(c), owed: 1n, readings: [reading(1)] }),
    ).rejects.toMatchObject({ code: 'PROVIDER_STORE_CLOSED' })
    const reopened = openProviderStore(join(dir, 'vouchers.db'))
    expect(reopened.channel(c)).toMatchObject({ owed: 0n, voucher: undefined })
    await reopened.close()
  })

  it('migrates a schema 1 store (a row per reading) to schema 2, readings and channels unchanged', async () => {
    const path = join(dir, 'schema1.db')
    const old = new Database(path)
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO meta VALUES ('schema_version', '1');
      CREATE TABLE channels (consumer TEXT PRIMARY KEY, owed TEXT NOT NULL, served TEXT NOT NULL,
        served_count INTEGER NOT NULL, voucher TEXT);
      CREATE TABLE served (consumer TEXT NOT NULL, position INTEGER NOT NULL, epoch INTEGER NOT NULL,
        digest TEXT NOT NULL, device TEXT NOT NULL, PRIMARY KEY (consumer, position)) WITHOUT ROWID;
    `)
    const readings = [0, 1, 2].map((i) => reading(i))
    const keccak = await loadKeccak256()
    const served = extendServed(
      keccak,
      NOTHING_SERVED,
      readings.map((r) => r.digest),
    )
    old
      .prepare('INSERT INTO channels VALUES (?, ?, ?, ?, NULL)')
      .run(a.toLowerCase(), '30', served, readings.length)
    const insert = old.prepare('INSERT INTO served VALUES (?, ?, ?, ?, ?)')
    for (const [i, r] of readings.entries())
      insert.run(a.toLowerCase(), i, Number(r.epoch), r.digest, r.device.toLowerCase())
    old.close()

    const store = openProviderStore(path)
    expect(store.served(a, 0n, 10n)).toEqual(readings.map((r, i) => ({ position: BigInt(i), ...r })))
    expect(store.channel(a)).toMatchObject({ owed: 30n, served, servedCount: 3n })
    // and it carries on from there
    expect(
      await store.recordAnswer(
        { owed: 30n, servedCount: 3n },
        { voucher: voucherOf(a, 30n, served, 3n), owed: 40n, readings: [reading(3)] },
      ),
    ).toEqual({ served: extendServed(keccak, served, [reading(3).digest]), servedCount: 4n })
    await store.close()
    const check = new Database(path, { readonly: true })
    expect(check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe('2')
    expect(check.prepare('SELECT count(*) FROM served').pluck().get()).toBe(0)
    check.close()
  })
})
