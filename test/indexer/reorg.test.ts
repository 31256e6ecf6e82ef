/**
 * Reorg safety on a real anvil (`anvil_reorg`): an indexer following the head block by block sees
 * the chain replace its last 1 to 5 blocks with other transactions; it rolls back to the common
 * ancestor and replays, and then holds exactly what a fresh indexer of the same chain holds, table
 * for table. A reorg deeper than its finality halts it with INDEXER_REORG_TOO_DEEP and changes
 * nothing. With confirmations, a reorg shallower than them never reaches what it indexed.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { type Address, encodeFunctionData, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { deviceRegistryAbi } from '../../src/chain/generated/contracts.ts'
import { depinDomain, deviceRegistrationTypes } from '../../src/chain/typedData.ts'
import {
  type CreateIndexerOptions,
  createIndexer,
  type Indexer,
  type IndexerReorg,
} from '../../src/indexer/createIndexer.ts'
import { EVENT_TABLES, STATE_TABLES } from '../../src/indexer/openIndexerDatabase.ts'
import { registerNewDevice, startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

const BERLIN = 0x881f1d4887fffffn
const LISBON = 0x88393362a1fffffn

let net: TestNetwork
let snapshot: Hex
let dir: string
const indexers: Indexer[] = []
let files = 0

beforeAll(async () => {
  net = await startTestNetwork()
  dir = mkdtempSync(join(tmpdir(), 'depin-reorg-'))
})
afterAll(async () => {
  await net?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})
beforeEach(async () => {
  snapshot = await net.snapshot()
})
afterEach(async () => {
  await Promise.all(indexers.splice(0).map((ix) => ix.stop()))
  await net.revert(snapshot)
})

function indexer(options: Partial<CreateIndexerOptions> = {}): { ix: Indexer; dbPath: string } {
  const dbPath = join(dir, `indexer-${++files}.sqlite`)
  const ix = createIndexer({
    publicClient: net.admin.publicClient,
    deployment: net.deployment,
    dbPath,
    ...options,
  })
  indexers.push(ix)
  return { ix, dbPath }
}

/** Every table the chain fills, rows sorted: what two indexers of one chain must agree on. */
function dump(dbPath: string): Record<string, string[]> {
  const db = new Database(dbPath, { readonly: true })
  db.defaultSafeIntegers(true)
  try {
    const tables = ['cursor', ...EVENT_TABLES, ...Object.keys(STATE_TABLES)]
    return Object.fromEntries(
      tables.map((t) => [
        t,
        db
          .prepare(`SELECT * FROM ${t}`)
          .all()
          .map((row) => JSON.stringify(row, (_, v) => (typeof v === 'bigint' ? v.toString() : v)))
          .sort(),
      ]),
    )
  } finally {
    db.close()
  }
}

/** A registration by anvil's first account (unlocked: anvil_reorg can send it) of a new device key. */
async function adminRegistration(cell: bigint) {
  const key = generatePrivateKey()
  const device = privateKeyToAccount(key).address
  const signature = await privateKeyToAccount(key).signTypedData({
    domain: depinDomain(net.chainId, net.deployment.contracts.deviceRegistry),
    types: deviceRegistrationTypes,
    primaryType: 'DeviceRegistration',
    message: { owner: net.admin.account?.address as Address, deviceClass: 1 },
  })
  return {
    device,
    tx: {
      from: net.admin.account?.address as Address,
      to: net.deployment.contracts.deviceRegistry,
      data: encodeFunctionData({
        abi: deviceRegistryAbi,
        functionName: 'register',
        args: [device, 1, cell, signature, '0x'],
      }),
    },
  }
}

const reorg = (depth: number, txs: { tx: Record<string, string>; block: number }[]) =>
  net.testClient.request({
    method: 'anvil_reorg' as never,
    params: [depth, txs.map(({ tx, block }) => [tx, block])] as never,
  })

const head = () => net.admin.publicClient.getBlockNumber({ cacheTime: 0 })

/** Seven blocks of state changes, the indexer syncing after each (as polling would). */
async function playFollowed(ix: Indexer) {
  const owner = await net.actor()
  const other = await net.actor()
  await ix.syncOnce()
  const devices: Address[] = []
  for (let i = 0; i < 4; i++) {
    devices.push((await registerNewDevice(net, owner, i % 2 ? BERLIN : LISBON)).device)
    await ix.syncOnce()
  }
  // state updates in the blocks a reorg replaces: the undo log must restore them
  await net.send(
    owner.contracts.deviceRegistry.write.transfer([devices[0] as Address, other.address]),
    owner.clients,
  )
  await ix.syncOnce()
  await net.send(owner.contracts.deviceRegistry.write.retire([devices[1] as Address]), owner.clients)
  await ix.syncOnce()
  await net.send(net.contracts.deviceRegistry.write.addGateway([other.address, 'http://127.0.0.1:9/']))
  await ix.syncOnce()
  return { owner, other, devices }
}

describe('indexing through reorgs', () => {
  it.each([1, 2, 3, 4, 5])(
    'a reorg %i blocks deep is rolled back and replayed: the indexer equals a fresh reindex',
    async (depth) => {
      const reorgs: IndexerReorg[] = []
      const followed = indexer({ finality: 10, onReorg: (r) => reorgs.push(r) })
      await playFollowed(followed.ix)
      const before = await head()
      const replaced = dump(followed.dbPath)
      // the last `depth` blocks replaced: other registrations, in other blocks of the new branch
      const one = await adminRegistration(LISBON)
      const two = await adminRegistration(BERLIN)
      await reorg(depth, [{ tx: one.tx, block: 0 }, ...(depth > 1 ? [{ tx: two.tx, block: depth - 1 }] : [])])
      expect(await head()).toBe(before)
      await followed.ix.syncOnce()
      expect(reorgs.length).toBe(1)
      expect(reorgs[0]?.depth).toBe(BigInt(depth))
      expect(followed.ix.store.getDevice(one.device)).toBeDefined()
      // and on after it
      await registerNewDevice(net, await net.actor(), BERLIN)
      await followed.ix.syncOnce()

      const fresh = indexer()
      await fresh.ix.syncOnce()
      const after = dump(followed.dbPath)
      expect(after).toEqual(dump(fresh.dbPath))
      expect(after).not.toEqual(replaced)
    },
    60_000,
  )

  it('halts with INDEXER_REORG_TOO_DEEP on a reorg deeper than its finality, changing nothing', async () => {
    const errors: unknown[] = []
    const followed = indexer({ finality: 3, onError: (e) => errors.push(e) })
    await playFollowed(followed.ix)
    const before = dump(followed.dbPath)
    const one = await adminRegistration(LISBON)
    await reorg(5, [{ tx: one.tx, block: 0 }])
    const error = await followed.ix.syncOnce().catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'INDEXER_REORG_TOO_DEEP',
      retryable: false,
      details: { finality: '3' },
    })
    expect(dump(followed.dbPath)).toEqual(before)
    expect(followed.ix.store.getDevice(one.device)).toBeUndefined()
  })

  it('with confirmations, never indexes what a shallower reorg replaces', async () => {
    const reorgs: IndexerReorg[] = []
    const confirmed = indexer({ confirmations: 3, onReorg: (r) => reorgs.push(r) })
    await playFollowed(confirmed.ix)
    expect(confirmed.ix.store.lastProcessed()?.block).toBe((await head()) - 3n)
    const one = await adminRegistration(LISBON)
    await reorg(3, [{ tx: one.tx, block: 0 }])
    await net.testClient.mine({ blocks: 3 })
    await confirmed.ix.syncOnce()
    expect(reorgs).toEqual([])
    expect(confirmed.ix.store.getDevice(one.device)).toBeDefined()
    const fresh = indexer({ confirmations: 3 })
    await fresh.ix.syncOnce()
    expect(dump(confirmed.dbPath)).toEqual(dump(fresh.dbPath))
  })
})
