import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import Database from 'better-sqlite3'
import { type Address, type Hex, keccak256, type TransactionReceipt, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DepinError } from '../../src/errors.ts'
import {
  type CreateIndexerOptions,
  createIndexer,
  type Indexer,
  type IndexerProgress,
  type IndexerReorg,
} from '../../src/indexer/createIndexer.ts'
import { openIndexerStore } from '../../src/indexer/indexerStore.ts'
import {
  joinValidators,
  makeReport,
  registerNewDevice,
  signReport,
  sortAddresses,
  startTestNetwork,
  type TestNetwork,
  WAD,
} from '../helpers/testNetwork.ts'

// Resolution-8 H3 cells (valid mode-1 indexes): Berlin and Lisbon.
const BERLIN = 0x881f1d4887fffffn
const LISBON = 0x88393362a1fffffn

let net: TestNetwork
let snapshot: Hex
let dir: string
const indexers: Indexer[] = []

beforeAll(async () => {
  net = await startTestNetwork()
  dir = mkdtempSync(join(tmpdir(), 'depin-indexer-'))
})
afterAll(async () => {
  await net?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})
beforeEach(async () => {
  snapshot = await net.snapshot()
})
afterEach(async () => {
  await Promise.all(indexers.splice(0).map((indexer) => indexer.stop()))
  await net.revert(snapshot)
})

let files = 0
const newDbPath = () => join(dir, `indexer-${++files}.sqlite`)

function indexer(options: Partial<CreateIndexerOptions> = {}): Indexer {
  const created = createIndexer({
    publicClient: net.admin.publicClient,
    deployment: net.deployment,
    dbPath: newDbPath(),
    pollIntervalMs: 20,
    ...options,
  })
  indexers.push(created)
  return created
}

type Actor = Awaited<ReturnType<TestNetwork['actor']>>

async function timestampOf(receipt: TransactionReceipt): Promise<bigint> {
  return (await net.admin.publicClient.getBlock({ blockNumber: receipt.blockNumber })).timestamp
}

/** Registers a new device key to `owner` in class 1 at `cell`, with its proof of possession. */
async function registerDevice(owner: Actor, cell: bigint) {
  const { device, receipt } = await registerNewDevice(net, owner, cell)
  return { device, registeredAt: await timestampOf(receipt) }
}

/** Polls `condition` until it holds or the deadline passes. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met before the deadline')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const code = (error: unknown) => (error instanceof DepinError ? error.code : String(error))

/**
 * A history touching every indexed event, 10 s between steps so that every step has its own
 * block timestamp: three validators join, epoch 1 is reported and a claim paid, one validator
 * leaves, one equivocates and is slashed; two devices registered, one transferred and relocated,
 * the other retired.
 */
async function playHistory() {
  const [alice, bob, carol, relayer] = [
    await net.actor(),
    await net.actor(),
    await net.actor(),
    await net.actor(),
  ]
  const step = () => net.warp(10)

  // epoch 1 first: its report is due before epoch 3 ends, and the device history below takes an hour
  const validators = await joinValidators(net, 3)
  const joinedAt = new Map<Address, bigint>()
  for (const v of validators) {
    const [event] = await net.contracts.validatorSet.getEvents.ValidatorJoined(
      { validator: v.address },
      { fromBlock: net.deployment.startBlock },
    )
    if (!event) throw new Error('no join event')
    joinedAt.set(
      v.address,
      (await net.admin.publicClient.getBlock({ blockNumber: event.blockNumber })).timestamp,
    )
  }
  await net.closeEpoch(1n)
  const tree = StandardMerkleTree.of(
    [
      [alice.address, 10n * WAD],
      [bob.address, 5n * WAD],
    ],
    ['address', 'uint256'],
  )
  const report = makeReport(1n, tree.root as Hex, 15n * WAD)
  const reportReceipt = await net.send(
    relayer.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
    relayer.clients,
  )
  let aliceProof: Hex[] = []
  for (const [i, [account]] of tree.entries())
    if (account === alice.address) aliceProof = tree.getProof(i) as Hex[]
  const claimReceipt = await net.send(
    relayer.contracts.rewardDistributor.write.claim([alice.address, 10n * WAD, 1n, aliceProof]),
    relayer.clients,
  )

  const [stays, cheat, leaver] = validators as [Actor, Actor, Actor]
  const leftAt = await timestampOf(
    await net.send(leaver.contracts.validatorSet.write.leave(), leaver.clients),
  )
  await step()
  const other = makeReport(1n, keccak256(toHex('another root')), 15n * WAD)
  const [sigHonest] = await signReport(net, [cheat], report)
  const [sigOther] = await signReport(net, [cheat], other)
  const equivocationReceipt = await net.send(
    relayer.contracts.epochManager.write.proveEquivocation([
      report,
      sigHonest as Hex,
      other,
      sigOther as Hex,
    ]),
    relayer.clients,
  )
  await step()

  const first = await registerDevice(alice, BERLIN)
  await step()
  const second = await registerDevice(bob, LISBON)
  await step()
  const transferredAt = await timestampOf(
    await net.send(
      alice.contracts.deviceRegistry.write.transfer([first.device, carol.address]),
      alice.clients,
    ),
  )
  await net.warp(3_600) // the relocation cooldown
  const relocatedAt = await timestampOf(
    await net.send(carol.contracts.deviceRegistry.write.relocate([first.device, LISBON]), carol.clients),
  )
  await step()
  const retiredAt = await timestampOf(
    await net.send(bob.contracts.deviceRegistry.write.retire([second.device]), bob.clients),
  )
  await step()

  return {
    alice,
    bob,
    carol,
    relayer,
    first,
    second,
    transferredAt,
    relocatedAt,
    retiredAt,
    validators: { all: validators, stays, cheat, leaver, joinedAt, leftAt },
    report,
    reportReceipt,
    claimReceipt,
    equivocationReceipt,
    /** Events the indexer follows in this history. */
    eventCount: 2 + 1 + 1 + 1 + 3 + 1 + 2 + 1 + 2,
  }
}

describe('createIndexer', () => {
  it('stores every indexed event exactly, syncing in ranges of blockRange blocks', async () => {
    const h = await playHistory()
    const progress: IndexerProgress[] = []
    const ix = indexer({ blockRange: 5n, onProgress: (p) => progress.push(p) })
    const head = await net.admin.publicClient.getBlock()

    expect(await ix.syncOnce()).toBe(head.number)
    const { store } = ix
    expect(store.lastProcessed()).toEqual({ block: head.number, timestamp: head.timestamp })
    expect(progress.at(-1)?.block).toBe(head.number)
    expect(progress.length).toBe(Math.ceil(Number(head.number - net.deployment.startBlock + 1n) / 5))
    expect(progress.reduce((sum, p) => sum + p.events, 0)).toBe(h.eventCount)

    // devices: latest state
    expect(store.deviceCount()).toBe(2)
    expect(store.getDevice(h.first.device)).toEqual({
      device: h.first.device,
      owner: h.carol.address,
      deviceClass: 1,
      h3Cell: LISBON,
      status: 'active',
      registeredAt: h.first.registeredAt,
    })
    expect(store.getDevice(h.second.device)).toEqual({
      device: h.second.device,
      owner: h.bob.address,
      deviceClass: 1,
      h3Cell: LISBON,
      status: 'retired',
      registeredAt: h.second.registeredAt,
    })
    expect(store.getDevice(h.first.device.toLowerCase() as Address)?.owner).toBe(h.carol.address)
    expect(store.getDevice(privateKeyToAccount(generatePrivateKey()).address)).toBeUndefined()
    const byAddress = [h.first.device, h.second.device].sort((a, b) =>
      a.toLowerCase() < b.toLowerCase() ? -1 : 1,
    )
    expect(store.listDevices().map((d) => d.device)).toEqual(byAddress)
    expect(store.listDevices({ limit: 1, offset: 1 }).map((d) => d.device)).toEqual(byAddress.slice(1))
    expect(store.listDevices({ owner: h.carol.address }).map((d) => d.device)).toEqual([h.first.device])
    expect(store.listDevices({ owner: h.alice.address })).toEqual([])

    // validators, and the active set as of any time
    const { stays, cheat, leaver, joinedAt, leftAt } = h.validators
    const lowerSorted = (actors: Actor[]) => actors.map((a) => a.address.toLowerCase()).sort()
    const joins = [...joinedAt.values()].sort()
    const slashedAt = await timestampOf(h.equivocationReceipt)
    expect(store.activeValidatorsAt(joins[0] as bigint)).toEqual([])
    expect(store.activeValidatorsAt((joins.at(-1) as bigint) + 1n)).toEqual(
      lowerSorted([stays, cheat, leaver]),
    )
    expect(store.activeValidatorsAt(leftAt + 1n)).toEqual(lowerSorted([stays, cheat]))
    expect(store.activeValidatorsAt(slashedAt + 1n)).toEqual(lowerSorted([stays]))
    const last = store.lastProcessed()?.timestamp as bigint
    expect(() => store.activeValidatorsAt(last + 1n)).toThrow(
      expect.objectContaining({ code: 'INDEXER_BEHIND' }),
    )
    expect(store.validators()).toEqual(
      sortAddresses([
        { address: stays.address, status: 'active', bond: 10n * WAD },
        { address: cheat.address, status: 'slashed', bond: 0n },
        { address: leaver.address, status: 'unbonding', bond: 10n * WAD },
      ]).map(({ address, status, bond }) => ({
        validator: address,
        status,
        bond,
        joinedAt: joinedAt.get(address),
      })),
    )
    expect(store.equivocations()).toEqual([
      {
        validator: cheat.address,
        epoch: 1n,
        prover: h.relayer.address,
        slashed: 10n * WAD,
        txHash: h.equivocationReceipt.transactionHash,
        block: h.equivocationReceipt.blockNumber,
      },
    ])

    // epochs
    const epoch = {
      epoch: 1n,
      readingsRoot: h.report.readingsRoot,
      rewardsRoot: h.report.rewardsRoot,
      receiptsRoot: h.report.receiptsRoot,
      total: 15n * WAD,
      accepted: 100,
      signers: sortAddresses(h.validators.all).map((v) => v.address),
      submitter: h.relayer.address,
      txHash: h.reportReceipt.transactionHash,
      block: h.reportReceipt.blockNumber,
      timestamp: await timestampOf(h.reportReceipt),
      minted: 15n * WAD,
      fromFees: 0n,
    }
    expect(store.epochs()).toEqual([epoch])
    expect(store.getEpoch(1n)).toEqual(epoch)
    expect(store.getEpoch(2n)).toBeUndefined()

    // claims
    const claim = {
      account: h.alice.address,
      amount: 10n * WAD,
      cumulativeAmount: 10n * WAD,
      txHash: h.claimReceipt.transactionHash,
      block: h.claimReceipt.blockNumber,
    }
    expect(store.claims()).toEqual([claim])
    expect(store.claims(h.alice.address)).toEqual([claim])
    expect(store.claims(h.bob.address)).toEqual([])

    // nothing new: a second sync changes nothing
    expect(await ix.syncOnce()).toBe(head.number)
    expect(store.deviceCount()).toBe(2)
    expect(store.claims()).toHaveLength(1)
  })

  it('answers devicesAt(before) with the registry as of that time', async () => {
    const h = await playHistory()
    await net.warp(10)
    const ix = indexer()
    await ix.syncOnce()
    const { store } = ix
    const owners = (before: bigint) =>
      Object.fromEntries(store.devicesAt(before).map((d) => [d.device, `${d.owner} ${d.status} ${d.h3Cell}`]))
    const state = (owner: Actor, status: string, cell: bigint) => `${owner.address} ${status} ${cell}`

    // before registration the device is absent; the first block holding the event is not "before"
    expect(store.devicesAt(h.first.registeredAt)).toEqual([])
    expect(owners(h.first.registeredAt + 1n)).toEqual({ [h.first.device]: state(h.alice, 'active', BERLIN) })
    expect(owners(h.transferredAt)).toEqual({
      [h.first.device]: state(h.alice, 'active', BERLIN),
      [h.second.device]: state(h.bob, 'active', LISBON),
    })
    expect(owners(h.transferredAt + 1n)[h.first.device]).toBe(state(h.carol, 'active', BERLIN))
    expect(owners(h.relocatedAt)[h.first.device]).toBe(state(h.carol, 'active', BERLIN))
    expect(owners(h.relocatedAt + 1n)[h.first.device]).toBe(state(h.carol, 'active', LISBON))
    expect(owners(h.retiredAt)[h.second.device]).toBe(state(h.bob, 'active', LISBON))
    expect(owners(h.retiredAt + 1n)[h.second.device]).toBe(state(h.bob, 'retired', LISBON))

    // after the last event it is the latest state, sorted by address, registration times kept
    const last = store.lastProcessed()
    if (!last) throw new Error('nothing processed')
    expect(store.devicesAt(last.timestamp)).toEqual(store.listDevices())
    const sorted = store.devicesAt(last.timestamp).map((d) => d.device.toLowerCase())
    expect(sorted).toEqual([...sorted].sort())

    // a time not yet reached by the indexed blocks has no final answer
    expect(() => store.devicesAt(last.timestamp + 1n)).toThrow(
      expect.objectContaining({ code: 'INDEXER_BEHIND' }),
    )

    // another database over the same chain gives the same answers
    const other = indexer()
    await other.syncOnce()
    for (const t of [h.first.registeredAt + 1n, h.transferredAt + 1n, h.relocatedAt, last.timestamp]) {
      expect(other.store.devicesAt(t)).toEqual(store.devicesAt(t))
    }
  })

  it('answers gatewaysAt(before) with the gateway list as of that time', async () => {
    const registry = net.contracts.deviceRegistry
    const [a, b] = sortAddresses([0, 1].map(() => privateKeyToAccount(generatePrivateKey()))).map(
      (account) => account.address,
    ) as [Address, Address]
    const at = async (write: Promise<Hex>) => {
      const receipt = await net.send(write)
      return (await net.admin.publicClient.getBlock({ blockNumber: receipt.blockNumber })).timestamp
    }
    const added = await at(registry.write.addGateway([b, 'http://b']))
    await net.warp(5)
    await at(registry.write.addGateway([a, 'http://a']))
    await net.warp(5)
    const changed = await at(registry.write.setGatewayUrl([b, 'http://b2']))
    await net.warp(5)
    const removed = await at(registry.write.removeGateway([a]))
    await net.warp(5)
    const ix = indexer()
    await ix.syncOnce()
    const list = (before: bigint) => ix.store.gatewaysAt(before).map((g) => `${g.gateway} ${g.url}`)

    expect(list(added)).toEqual([])
    expect(list(added + 1n)).toEqual([`${b} http://b`])
    expect(list(changed)).toEqual([`${a} http://a`, `${b} http://b`])
    expect(list(changed + 1n)).toEqual([`${a} http://a`, `${b} http://b2`])
    expect(list(removed + 1n)).toEqual([`${b} http://b2`])
    expect(ix.store.gateways().map((g) => `${g.gateway} ${g.url}`)).toEqual([`${b} http://b2`])
    const last = ix.store.lastProcessed()?.timestamp as bigint
    expect(() => ix.store.gatewaysAt(last + 1n)).toThrow(expect.objectContaining({ code: 'INDEXER_BEHIND' }))
  })

  it('keeps the endpoint each active validator advertised', async () => {
    const [a, b] = await joinValidators(net, 2)
    if (!a || !b) throw new Error('no validators')
    await net.send(a.contracts.validatorSet.write.setEndpoint(['http://a:1']), a.clients)
    await net.send(a.contracts.validatorSet.write.setEndpoint(['http://a:2']), a.clients)
    await net.send(b.contracts.validatorSet.write.setEndpoint(['http://b:1']), b.clients)
    const ix = indexer()
    await ix.syncOnce()
    const endpoints = () => ix.store.validatorEndpoints().map((e) => `${e.validator} ${e.url}`)
    expect(endpoints()).toEqual(
      sortAddresses([a, b]).map((v) => `${v.address} http://${v === a ? 'a:2' : 'b:1'}`),
    )
    await net.send(b.contracts.validatorSet.write.leave(), b.clients)
    await ix.syncOnce()
    expect(endpoints()).toEqual([`${a.address} http://a:2`])
  })

  it('resumes from its cursor after a restart, without duplicates', async () => {
    const owner = await net.actor()
    const first = await registerDevice(owner, BERLIN)
    const dbPath = newDbPath()
    const before = indexer({ dbPath })
    await before.syncOnce()
    const cursor = before.store.lastProcessed()
    if (!cursor) throw new Error('nothing processed')
    await before.stop()

    const second = await registerDevice(owner, LISBON)
    await joinValidators(net, 1)
    const progress: IndexerProgress[] = []
    const after = indexer({ dbPath, onProgress: (p) => progress.push(p) })
    expect(after.store.lastProcessed()).toEqual(cursor)
    const head = await after.syncOnce()

    expect(head).toBe(await net.admin.publicClient.getBlockNumber({ cacheTime: 0 }))
    expect(after.store.lastProcessed()?.block).toBe(head)
    // only the blocks after the cursor were read, holding only the new events
    expect(progress.length).toBeGreaterThan(0)
    expect(progress.every((p) => p.block > cursor.block)).toBe(true)
    expect(progress.reduce((sum, p) => sum + p.events, 0)).toBe(2)
    expect(after.store.deviceCount()).toBe(2)
    expect(
      after.store
        .listDevices({ owner: owner.address })
        .map((d) => d.device)
        .sort(),
    ).toEqual([first.device, second.device].sort())
    expect(after.store.validators()).toHaveLength(1)
    await after.stop()

    // another process may read the same file while the indexer writes
    const reader = openIndexerStore(dbPath)
    try {
      expect(reader.deviceCount()).toBe(2)
      expect(reader.lastProcessed()?.block).toBe(head)
    } finally {
      reader.close()
    }
  })

  it('refuses a database that indexes another deployment', async () => {
    const dbPath = newDbPath()
    await indexer({ dbPath }).syncOnce()
    const { contracts } = net.deployment
    const other = {
      ...net.deployment,
      contracts: {
        ...contracts,
        deviceRegistry: contracts.epochManager,
        epochManager: contracts.deviceRegistry,
      },
    }
    expect(() => createIndexer({ publicClient: net.admin.publicClient, deployment: other, dbPath })).toThrow(
      expect.objectContaining({ code: 'INDEXER_DEPLOYMENT_MISMATCH' }),
    )
  })

  it('halts with INDEXER_REORG_TOO_DEEP when no processed block it kept is on the chain, changing nothing', async () => {
    const dbPath = newDbPath()
    const first = indexer({ dbPath })
    await first.syncOnce()
    const before = first.store.lastProcessed()
    await first.stop()
    const db = new Database(dbPath)
    db.prepare('UPDATE cursor SET hash = ?').run(`0x${'ab'.repeat(32)}`)
    db.prepare('UPDATE block_hashes SET hash = ?').run(`0x${'ab'.repeat(32)}`)
    db.close()

    const again = indexer({ dbPath })
    await expect(again.start()).rejects.toMatchObject({ code: 'INDEXER_REORG_TOO_DEEP', retryable: false })
    await net.warp(1)
    await expect(again.syncOnce()).rejects.toMatchObject({ code: 'INDEXER_REORG_TOO_DEEP' })
    expect(again.store.lastProcessed()).toEqual(before)
  })

  it('rolls back a reorg that replaced its cursor block with another one, and indexes the new branch', async () => {
    const owner = await net.actor()
    const fork = await net.snapshot()
    const berlin = await registerDevice(owner, BERLIN)
    const reorgs: IndexerReorg[] = []
    const ix = indexer({ onReorg: (r) => reorgs.push(r) })
    await ix.syncOnce()
    const cursor = ix.store.lastProcessed()
    if (!cursor) throw new Error('nothing processed')
    expect(ix.store.getDevice(berlin.device)).toBeDefined()

    await net.revert(fork)
    const lisbon = await registerDevice(owner, LISBON)
    expect(await net.admin.publicClient.getBlockNumber({ cacheTime: 0 })).toBe(cursor.block)

    await ix.syncOnce()
    expect(reorgs).toMatchObject([{ from: cursor, depth: 1n, dropped: 1 }])
    expect(ix.store.getDevice(berlin.device)).toBeUndefined()
    expect(ix.store.getDevice(lisbon.device)).toMatchObject({ h3Cell: LISBON })
    expect(ix.store.deviceCount()).toBe(1)
  })

  it('with finality 0, halts on any reorg in the background, reports it, and waitForTime rejects with it', async () => {
    const fork = await net.snapshot()
    await net.warp(10)
    const errors: unknown[] = []
    const ix = indexer({ onError: (error) => errors.push(error), finality: 0 })
    await ix.start()
    const cursor = ix.store.lastProcessed()
    if (!cursor) throw new Error('nothing processed')
    await net.revert(fork) // the head is now below the cursor

    await until(() => errors.length > 0)
    expect(errors.map(code)).toEqual(['INDEXER_REORG_TOO_DEEP'])
    await expect(ix.waitForTime(cursor.timestamp + 3_600n, 5_000)).rejects.toMatchObject({
      code: 'INDEXER_REORG_TOO_DEEP',
    })
    await expect(ix.syncOnce()).rejects.toMatchObject({ code: 'INDEXER_REORG_TOO_DEEP' })
    expect(ix.store.lastProcessed()).toEqual(cursor)
  })

  it('waitForTime resolves once a block at that time is processed, even without events', async () => {
    const ix = indexer()
    await ix.start()
    const now = (await net.admin.publicClient.getBlock()).timestamp
    const target = now + 1_000n
    let resolved = false
    const waiting = ix.waitForTime(target, 20_000).then(() => {
      resolved = true
    })
    await ix.syncOnce()
    expect(resolved).toBe(false)
    await net.warp(1_000)
    await waiting
    expect(ix.store.lastProcessed()?.timestamp).toBeGreaterThanOrEqual(target)
    await ix.waitForTime(now) // already processed
  })

  it('waitForTime syncs by itself when the indexer was not started', async () => {
    const ix = indexer()
    await net.warp(500)
    const now = (await net.admin.publicClient.getBlock()).timestamp
    await ix.waitForTime(now, 10_000)
    expect(ix.store.lastProcessed()?.timestamp).toBe(now)
  })

  it('waitForTime rejects after its timeout when no such block comes', async () => {
    const ix = indexer()
    await ix.start()
    const last = ix.store.lastProcessed()
    if (!last) throw new Error('nothing processed')
    const started = Date.now()
    await expect(ix.waitForTime(last.timestamp + 1_000_000n, 200)).rejects.toMatchObject({
      code: 'INDEXER_WAIT_TIMEOUT',
    })
    expect(Date.now() - started).toBeGreaterThanOrEqual(200)
    await ix.stop()
    await expect(ix.waitForTime(0n, 100)).rejects.toMatchObject({ code: 'INDEXER_STOPPED' })
    await expect(ix.syncOnce()).rejects.toMatchObject({ code: 'INDEXER_STOPPED' })
  })
})
