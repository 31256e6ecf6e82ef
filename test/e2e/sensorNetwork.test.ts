/**
 * The sensor network end to end, on real components: anvil, the contracts, SQLite stores, the
 * gateway over HTTP, three validators with their own keys and stores exchanging signatures, the
 * indexers, the API, and a simulated fleet with one station per fault kind.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { gridDisk } from 'h3-js'
import mqtt from 'mqtt'
import { type Address, getAddress, type Hex, hashTypedData } from 'viem'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { ProvenReceiptJson } from '../../src/api/verifyProvenReceipts.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { epochRandomness } from '../../src/chain/epochRandomness.ts'
import { epochManagerAbi } from '../../src/chain/generated/contracts.ts'
import { getContracts } from '../../src/chain/getContracts.ts'
import { anvilAccounts } from '../../src/chain/startAnvil.ts'
import { depinDomain, readingTypes } from '../../src/chain/typedData.ts'
import { runClaim } from '../../src/cli/claim.ts'
import { runAggregate, runReadings } from '../../src/cli/query.ts'
import { runRandomness } from '../../src/cli/randomness.ts'
import { runReceipts } from '../../src/cli/receipts.ts'
import { runStatus } from '../../src/cli/status.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { decodeBatch } from '../../src/gateway/batchFormat.ts'
import type { EpochRecord } from '../../src/indexer/indexerStore.ts'
import { type EmbeddedNetwork, startEmbeddedNetwork } from '../../src/network/startEmbeddedNetwork.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { type SignedReadingJson, toReadingJson } from '../../src/readings/reading.ts'
import { RECEIPT_LEAF_TYPES, receiptFromJson, receiptLeafValues } from '../../src/rewards/receiptsTree.ts'
import { environment } from '../../src/usecases/environment/index.ts'
import { createFleet, type FaultSpec } from '../../src/usecases/environment/simulator/createFleet.ts'
import type { FleetBatch } from '../../src/usecases/environment/simulator/runFleet.ts'
import type { EnvironmentSimulationOptions } from '../../src/usecases/environment/simulator/stationOptions.ts'
import { judgeEpoch } from '../../src/validator/judge/judgeEpoch.ts'
import { rejectReasonsOf } from '../../src/validator/judge/judgement.ts'
import { launchChromium } from '../helpers/launchChromium.ts'
import { shortEpochBlueprint, waitFor } from '../helpers/testBlueprint.ts'

const { blueprint } = shortEpochBlueprint()

const SEED = 7
const SIZE = 24
const faultKinds = ['stuck', 'outOfRange', 'drift', 'liar', 'replay', 'forged', 'clockSkew'] as const

/** One faulty station per kind, each in a different city where possible, so each keeps honest neighbours. */
function chooseFaults(): FaultSpec[] {
  const probe = createFleet({ size: SIZE, blueprint, seed: SEED })
  const byCity = new Map<string, number[]>()
  for (const s of probe.stations) byCity.set(s.city.name, [...(byCity.get(s.city.name) ?? []), s.index])
  const cities = [...byCity.values()]
  return faultKinds.map((kind, i) => {
    const city = cities[i % cities.length] as number[]
    const station = city[city.length - 1 - Math.floor(i / cities.length)] as number
    return kind === 'drift' ? { station, kind, perHour: '3600' } : { station, kind }
  })
}

/** A reading as the API serves it, with its proof. */
type Proven = { epoch: string; reading: SignedReadingJson; digest: Hex; proof: Hex[]; readingsRoot: Hex }

let dir: string
let network: EmbeddedNetwork
const faults = chooseFaults()
const fleet = createFleet({ size: SIZE, blueprint, seed: SEED, faults })
const deviceOf = (kind: (typeof faultKinds)[number]) =>
  fleet.stations[
    (faults.find((f) => f.kind === kind) as FaultSpec).station
  ]?.account.address.toLowerCase() as string
const batches: FleetBatch[] = []
let settled: EpochRecord

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-e2e-'))
  network = await startEmbeddedNetwork({
    dataDir: dir,
    blueprint,
    validators: 3,
    // the network's free API (test/e2e/marketNetwork.test.ts runs it as a paid provider)
    market: false,
    simulation: {
      fleet,
      intervalSeconds: 2, // the fleet sends over MQTT, the default
      onBatch: (batch: FleetBatch) => batches.push(batch),
    } satisfies EnvironmentSimulationOptions,
  })
  const firstTick = await waitFor('the first fleet batch', () => batches[0]?.time)
  const { genesisTime, epochLength } = network.deployment
  // the first epoch that the fleet covered from its start to its end
  const firstFull = (firstTick - genesisTime) / epochLength + 1n
  settled = await waitFor('a fully covered epoch to settle on-chain', () =>
    network.indexer.store.epochs().find((e) => e.epoch >= firstFull && e.accepted > 0),
  )
}, 180_000)

afterAll(async () => {
  await network?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** The settled epoch judged again here, independently: from the gateway's sealed batch and the registry. */
async function rejudgeSettled() {
  const { deployment } = network
  const keccak = await loadKeccak256()
  const response = await fetch(`${network.gatewayUrl}/v1/batches/${settled.epoch}`)
  const batch = decodeBatch(
    keccak,
    new Uint8Array(await response.arrayBuffer()),
    response.headers.get('x-batch-hash') as Hex,
  )
  const end = deployment.genesisTime + (settled.epoch + 1n) * deployment.epochLength
  const devices = new Map(network.indexer.store.devicesAt(end).map((d) => [d.device.toLowerCase(), d]))
  const judged = judgeEpoch({
    blueprint,
    epoch: settled.epoch,
    epochStart: end - deployment.epochLength,
    epochEnd: end,
    readings: batch.readings,
    devices,
    digest: await createReadingHasher(deployment.chainId, deployment.contracts.deviceRegistry),
    keccak,
  })
  return { judged, devices, end }
}

describe('an environmental sensor network, end to end', () => {
  it('settles the epoch with one report that every validator computed bit for bit', async () => {
    const results = network.validators.map((v) => v.store.result(settled.epoch))
    for (const r of results) {
      expect(r?.report).toEqual({
        epoch: settled.epoch,
        rulesHash: blueprint.rulesHash,
        readingsRoot: settled.readingsRoot,
        rewardsRoot: settled.rewardsRoot,
        receiptsRoot: settled.receiptsRoot,
        total: settled.total,
        accepted: settled.accepted,
      })
    }
    expect(settled.signers.length).toBeGreaterThanOrEqual(2)
    const contracts = getContracts(
      await createChainClients({ rpcUrl: network.rpcUrl, privateKey: anvilAccounts[0] }),
      network.deployment,
    )
    expect(await contracts.epochManager.read.readingsRootOf([settled.epoch])).toBe(settled.readingsRoot)
  })

  it("shows each validator's stake, last signed epoch and liveness", async () => {
    const answer = (await (await fetch(`${network.apiUrl}/v1/validators`)).json()) as {
      validators: {
        validator: string
        status: string
        bond: string
        lastSignedEpoch: string | null
        live: boolean
        endpoint: string | null
        signedRecent: number
        missedRecent: { notIncluded: number; signedOther: number; silent: number }
      }[]
      window: number
    }
    expect(answer.validators).toHaveLength(3)
    // every settled report of the window is either signed by a validator or accounted for as missed
    for (const v of answer.validators) {
      const { notIncluded, signedOther, silent } = v.missedRecent
      expect(v.signedRecent + notIncluded + signedOther + silent).toBe(answer.window)
      expect(signedOther).toBe(0) // all three are honest
    }
    // validators in this process share a board: they advertise no endpoint
    for (const v of answer.validators) expect(v.endpoint).toBeNull()
    for (const v of answer.validators) {
      expect(v).toMatchObject({ status: 'active', bond: blueprint.validators.minBond.toString() })
    }
    for (const signer of settled.signers) {
      const v = answer.validators.find((x) => x.validator.toLowerCase() === signer.toLowerCase())
      expect(BigInt(v?.lastSignedEpoch ?? -1)).toBeGreaterThanOrEqual(settled.epoch)
      expect(v?.live).toBe(true)
    }
  })

  it('lists the gateway on the registry, where the validators found it, and says so in /v1/status', async () => {
    const status = (await (await fetch(`${network.apiUrl}/v1/status`)).json()) as {
      gateways: { gateway: string; url: string }[]
    }
    expect(status.gateways).toHaveLength(1)
    expect(status.gateways[0]?.url).toBe(network.gatewayUrl)
    const printed: string[] = []
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => printed.push(line))
    try {
      await runStatus({ api: network.apiUrl })
    } finally {
      log.mockRestore()
    }
    expect(printed).toContain("gateways on the registry's list: 1")
    expect(printed.some((line) => line.endsWith(network.gatewayUrl))).toBe(true)
    expect(printed.filter((line) => line.includes(' active '))).toHaveLength(3)
    const own = network.validators[0]?.store.result(settled.epoch)
    const sealed = await fetch(`${network.gatewayUrl}/v1/batches/${settled.epoch}`)
    expect(own?.batchHashes).toEqual([sealed.headers.get('x-batch-hash')])
    await sealed.body?.cancel()
  })

  it("takes the fleet's readings over MQTT, answering through the embedded broker", async () => {
    expect(network.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/)
    const listener = await mqtt.connectAsync(network.mqttUrl)
    try {
      const verdicts = new Promise<{ status: number; accepted: number }>((resolve) =>
        listener.on('message', (_topic, payload) => resolve(JSON.parse(payload.toString()))),
      )
      await listener.subscribeAsync('depin/v1/verdicts/+', { qos: 1 })
      // the next tick of the fleet goes through the broker; its answer is in the gateway's format
      const answer = await verdicts
      expect(answer.status).toBe(200)
      expect(answer.accepted).toBeGreaterThan(0)
    } finally {
      await listener.endAsync()
    }
  })

  it('rejects every faulty reading with the right reason and accepts honest stations', async () => {
    const verdicts = (network.validators[0]?.store.verdicts(settled.epoch) ?? []).filter(Boolean)
    const reasonsOf = (device: string) =>
      verdicts.filter((v) => v.device === device).map((v) => v.reason ?? 'accepted')
    expect(reasonsOf(deviceOf('outOfRange')).length).toBeGreaterThan(0)
    expect(new Set(reasonsOf(deviceOf('outOfRange')))).toEqual(new Set(['OUT_OF_RANGE']))
    expect(new Set(reasonsOf(deviceOf('liar')))).toEqual(new Set(['SPATIAL_OUTLIER']))
    expect(reasonsOf(deviceOf('stuck'))).toContain('STUCK_VALUE')
    expect(reasonsOf(deviceOf('drift'))).toContain('SPATIAL_OUTLIER')
    // signed by another key, stamped in the future: refused at the gateway, never in a batch
    expect(reasonsOf(deviceOf('forged'))).toEqual([])
    expect(reasonsOf(deviceOf('clockSkew'))).toEqual([])
    const gatewayReasons = (device: string) =>
      batches.flatMap((b) =>
        b.rejections.filter((r) => r.reading.device.toLowerCase() === device).map((r) => r.reason),
      )
    expect(new Set(gatewayReasons(deviceOf('forged')))).toEqual(new Set(['SIGNATURE_INVALID']))
    expect(new Set(gatewayReasons(deviceOf('clockSkew')))).toEqual(new Set(['CLOCK_SKEW']))
    expect(gatewayReasons(deviceOf('replay'))).toContain('READING_REPLAYED')

    const faulty = new Set(faultKinds.map(deviceOf))
    const honest = fleet.stations.map((s) => s.account.address.toLowerCase()).filter((d) => !faulty.has(d))
    for (const device of [...honest, deviceOf('replay')]) {
      expect(reasonsOf(device).length, device).toBeGreaterThan(0)
      expect(new Set(reasonsOf(device)), device).toEqual(new Set(['accepted']))
    }
  })

  it('matches an independent recomputation: verdicts from the sealed batch, rewards and the on-chain root', async () => {
    const { judged, devices, end } = await rejudgeSettled()
    expect(judged.readingsRoot).toBe(settled.readingsRoot)
    expect(judged.accepted).toBe(settled.accepted)

    // rewards, recomputed here from the published rule: quality-weighted accepted readings
    const emission =
      blueprint.token.initialEpochEmission >> (settled.epoch / BigInt(blueprint.token.halvingIntervalEpochs))
    const devicePool = (emission * BigInt(blueprint.rewards.deviceShareBps)) / 10_000n
    const perDevice = new Map<string, { accepted: bigint; submitted: bigint }>()
    for (const j of judged.judged) {
      const d = perDevice.get(j.reading.device.toLowerCase()) ?? { accepted: 0n, submitted: 0n }
      d.submitted += 1n
      if (j.verdict.type === 'accepted') d.accepted += 1n
      perDevice.set(j.reading.device.toLowerCase(), d)
    }
    const weights = [...perDevice].map(
      ([device, d]) => [device, d.accepted * ((d.accepted * 10_000n) / d.submitted)] as const,
    )
    const totalWeight = weights.reduce((sum, [, w]) => sum + w, 0n)
    const increments = new Map<string, bigint>()
    const credit = (account: string, amount: bigint) =>
      increments.set(account.toLowerCase(), (increments.get(account.toLowerCase()) ?? 0n) + amount)
    const deviceReward = new Map<string, bigint>()
    for (const [device, weight] of weights) {
      const reward = (devicePool * weight) / totalWeight
      deviceReward.set(device, reward)
      credit((devices.get(device) as { owner: Address }).owner, reward)
    }
    const base = network.indexer.store.epochs().find((e) => e.epoch < settled.epoch && e.timestamp < end)
    const signers = [...new Set(base?.signers.map((s) => s.toLowerCase()) ?? [])]
    for (const signer of signers) credit(signer, (emission - devicePool) / BigInt(signers.length))

    const total = [...increments.values()].reduce((a, b) => a + b, 0n)
    expect(total).toBe(settled.total)
    const previous = base
      ? (network.validators[0]?.store.result(base.epoch)?.cumulative ?? new Map())
      : new Map()
    const cumulative = new Map<string, bigint>(previous)
    for (const [account, amount] of increments)
      cumulative.set(account, (cumulative.get(account) ?? 0n) + amount)
    const tree = StandardMerkleTree.of(
      [...cumulative].filter(([, v]) => v > 0n).map(([a, v]) => [getAddress(a), v] as [Address, bigint]),
      ['address', 'uint256'],
    )
    expect(tree.root).toBe(settled.rewardsRoot)

    // honest stations earn; faulty ones earn less or nothing
    const faulty = new Set(faultKinds.map(deviceOf))
    const honestRewards = [...deviceReward].filter(([d]) => !faulty.has(d)).map(([, r]) => r)
    const leastHonest = [...honestRewards].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[0] ?? 0n
    expect(leastHonest).toBeGreaterThan(0n)
    for (const kind of ['stuck', 'outOfRange', 'drift', 'liar'] as const) {
      expect(deviceReward.get(deviceOf(kind)) ?? 0n, kind).toBeLessThan(leastHonest)
    }
    expect(deviceReward.get(deviceOf('outOfRange')) ?? 0n).toBe(0n)
    expect(deviceReward.get(deviceOf('liar')) ?? 0n).toBe(0n)
  })

  it("explains each device's outcome with a receipt that verifies against the chain and recomputes from the sealed batch", async () => {
    const { deployment } = network
    const { judged, devices } = await rejudgeSettled()
    // the receipts root of the epoch, from the chain's own log of the report
    const { publicClient } = await createChainClients({ rpcUrl: network.rpcUrl })
    const [log] = await publicClient.getContractEvents({
      address: deployment.contracts.epochManager,
      abi: epochManagerAbi,
      eventName: 'ReportAccepted',
      args: { epoch: settled.epoch },
      fromBlock: deployment.startBlock,
    })
    const receiptsRoot = log?.args.receiptsRoot as Hex
    expect(receiptsRoot).toBe(settled.receiptsRoot)
    const reasons = rejectReasonsOf(environment)
    for (const kind of [...faultKinds, 'honest'] as const) {
      const device = kind === 'honest' ? (fleet.stations[0]?.account.address as Address) : deviceOf(kind)
      const answer = (await (
        await fetch(`${network.apiUrl}/v1/devices/${device}/receipts?limit=20`)
      ).json()) as {
        receipts: ProvenReceiptJson[]
        reasons: string[]
      }
      expect(answer.reasons).toEqual(reasons)
      const served = answer.receipts.find((r) => r.epoch === settled.epoch.toString())
      const own = judged.judged.filter((j) => j.reading.device.toLowerCase() === device.toLowerCase())
      if (own.length === 0) {
        // nothing of it reached the epoch's batch (the gateway refused a forgery or a replay)
        expect(served, kind).toBeUndefined()
        continue
      }
      if (!served) throw new Error(`no receipt of ${kind} for epoch ${settled.epoch}`)
      const receipt = receiptFromJson(served.receipt)
      // a leaf of OpenZeppelin's tree under the on-chain root
      expect(
        StandardMerkleTree.verify(
          receiptsRoot,
          [...RECEIPT_LEAF_TYPES],
          receiptLeafValues(receipt),
          served.proof,
        ),
        kind,
      ).toBe(true)
      // its numbers, recomputed from the device's records in the sealed batch
      const counts = new Array(reasons.length).fill(0)
      for (const j of own) if (j.verdict.type === 'rejected') counts[reasons.indexOf(j.verdict.reason)]++
      expect(receipt.submitted, kind).toBe(own.length)
      expect(receipt.accepted, kind).toBe(own.filter((j) => j.verdict.type === 'accepted').length)
      expect(receipt.rejected, kind).toEqual(counts)
      const qualityBps = (BigInt(receipt.accepted) * 10_000n) / BigInt(receipt.submitted)
      expect(receipt.units[0]).toBe(qualityBps)
      expect(receipt.weight).toBe(BigInt(receipt.accepted) * qualityBps)
      expect(receipt.totalWeight).toBe(judged.devices.reduce((sum, d) => sum + d.weight, 0n))
      expect(receipt.reward).toBe((receipt.devicePool * receipt.weight) / receipt.totalWeight)
      expect(receipt.owner).toBe((devices.get(device.toLowerCase()) as { owner: Address }).owner)
      if (kind === 'outOfRange') {
        expect(served.explanation).toMatch(/OUT_OF_RANGE \d+/)
        expect(receipt.reward).toBe(0n)
      }
      if (kind === 'honest') expect(receipt.reward).toBeGreaterThan(0n)
    }

    // and from the command line, checked against the chain; a tampered reward is caught
    const printed: string[] = []
    const print = (line: string) => printed.push(line)
    const device = deviceOf('stuck')
    await runReceipts({
      device,
      api: network.apiUrl,
      rpcUrl: network.rpcUrl,
      dataDir: dir,
      limit: '3',
      print,
    })
    expect(process.exitCode ?? 0).toBe(0)
    expect(printed.filter((line) => line.startsWith('Epoch ')).length).toBeGreaterThan(0)
    expect(printed.some((line) => line.includes('NOT VERIFIED'))).toBe(false)
    expect(printed.filter((line) => line.startsWith('  verified:')).length).toBe(
      printed.filter((line) => line.startsWith('Epoch ')).length,
    )
    const tampering = createServer(async (request, response) => {
      const answer = (await (await fetch(`${network.apiUrl}${request.url}`)).json()) as {
        receipts?: ProvenReceiptJson[]
      }
      const first = answer.receipts?.[0]
      if (first) first.receipt.reward = String(BigInt(first.receipt.reward) + 10n ** 18n)
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify(answer))
    })
    await new Promise<void>((resolve) => tampering.listen(0, '127.0.0.1', resolve))
    try {
      printed.length = 0
      const api = `http://127.0.0.1:${(tampering.address() as { port: number }).port}`
      await runReceipts({ device, api, rpcUrl: network.rpcUrl, dataDir: dir, limit: '3', print })
      expect(process.exitCode).toBe(1)
      expect(printed.some((line) => line.startsWith('  NOT VERIFIED: not in the receipts root'))).toBe(true)
    } finally {
      process.exitCode = 0
      tampering.close()
    }
  })

  it("gives each epoch's randomness the same from the validators' indexer as from the chain alone", async () => {
    const { publicClient } = await createChainClients({ rpcUrl: network.rpcUrl })
    const common = { publicClient, deployment: network.deployment, rulesHash: blueprint.rulesHash }
    for (const epoch of [settled.epoch - 1n, settled.epoch, settled.epoch + 1n]) {
      // the validator's way: its indexer's reports
      const byIndexer = await epochRandomness({
        ...common,
        epoch,
        lastReportBefore: (time) => network.indexer.store.epochs().find((e) => e.timestamp < time),
      })
      const printed: string[] = []
      await runRandomness({
        epoch: String(epoch),
        rpcUrl: network.rpcUrl,
        dataDir: dir,
        print: (l) => printed.push(l),
      })
      expect(printed[0]).toBe(`epoch ${epoch} randomness ${byIndexer?.value}`)
    }
    const printed: string[] = []
    await runRandomness({
      epoch: '100000',
      rpcUrl: network.rpcUrl,
      dataDir: dir,
      print: (l) => printed.push(l),
    })
    expect(printed[0]).toMatch(/has not started on-chain yet/)
    expect(process.exitCode).toBe(1)
    process.exitCode = 0
  })

  it('serves accepted readings and area aggregates with proofs that check against the on-chain root', async () => {
    const { deployment } = network
    const contracts = getContracts(
      await createChainClients({ rpcUrl: network.rpcUrl, privateKey: anvilAccounts[0] }),
      deployment,
    )
    const onChainRoot = await contracts.epochManager.read.readingsRootOf([settled.epoch])
    const from = deployment.genesisTime + settled.epoch * deployment.epochLength
    const to = from + deployment.epochLength
    const domain = depinDomain(deployment.chainId, deployment.contracts.deviceRegistry)
    // checked here with viem's EIP-712 and OpenZeppelin's tree, not with depin's code
    const verifies = (r: Proven, values = r.reading.values) => {
      const digest = hashTypedData({
        domain,
        types: readingTypes,
        primaryType: 'Reading',
        message: {
          device: r.reading.device,
          seq: BigInt(r.reading.seq),
          time: BigInt(r.reading.time),
          values: values.map(BigInt),
        },
      })
      return StandardMerkleTree.verify(onChainRoot, ['bytes32'], [digest], r.proof)
    }
    const accepted = (network.validators[0]?.store.verdicts(settled.epoch) ?? []).filter(
      (v) => v.status === 'accepted',
    )

    const station = (fleet.stations[0] as (typeof fleet.stations)[number]).account.address
    const answer = (await (
      await fetch(`${network.apiUrl}/v1/readings?device=${station}&from=${from}&to=${to}`)
    ).json()) as { readings: Proven[]; unverifiable: string[] }
    expect(answer.unverifiable).toEqual([])
    expect(answer.readings.map((r) => r.reading.seq)).toEqual(
      accepted.filter((v) => v.device === station.toLowerCase()).map((v) => v.seq.toString()),
    )
    for (const r of answer.readings) {
      expect(r.readingsRoot).toBe(onChainRoot)
      expect(verifies(r)).toBe(true)
    }
    const first = answer.readings[0] as Proven
    expect(
      verifies(first, [
        String(BigInt(first.reading.values[0] as string) + 1n),
        ...first.reading.values.slice(1),
      ]),
    ).toBe(false)

    // the stations within two rings of station 0's cell, found here from the fleet's own cells
    const center = (fleet.stations[0] as (typeof fleet.stations)[number]).h3Cell.toString(16)
    const area = new Set(gridDisk(center, 2))
    const inArea = new Set(
      fleet.stations
        .filter((s) => area.has(s.h3Cell.toString(16)))
        .map((s) => s.account.address.toLowerCase()),
    )
    const aggregate = (await (
      await fetch(
        `${network.apiUrl}/v1/aggregate?cell=${center}&ring=2&field=temperature&from=${from}&to=${to}`,
      )
    ).json()) as {
      count: number
      median: string
      min: string
      max: string
      readings: Proven[]
      field: { index: number }
    }
    const expected = accepted.filter((v) => inArea.has(v.device))
    expect(aggregate.count).toBe(expected.length)
    expect(aggregate.count).toBeGreaterThan(0)
    expect(
      new Set(aggregate.readings.map((r) => `${r.reading.device.toLowerCase()}:${r.reading.seq}`)),
    ).toEqual(new Set(expected.map((v) => `${v.device}:${v.seq}`)))
    const temperatures = aggregate.readings.map((r) =>
      BigInt(r.reading.values[aggregate.field.index] as string),
    )
    const sorted = [...temperatures].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    expect(BigInt(aggregate.median)).toBe(sorted[(sorted.length - 1) >> 1])
    expect(BigInt(aggregate.min)).toBe(sorted[0])
    expect(BigInt(aggregate.max)).toBe(sorted.at(-1))
    for (const r of aggregate.readings) expect(verifies(r)).toBe(true)

    const bad = await fetch(`${network.apiUrl}/v1/aggregate?cell=${center}&field=windSpeed`)
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('UNKNOWN_FIELD')
    const mistyped = await fetch(`${network.apiUrl}/v1/readings?device=nobody&from=yesterday`)
    expect(mistyped.status).toBe(400)
    expect(((await mistyped.json()) as { error: { code: string } }).error.code).toBe('INVALID_QUERY')
  })

  it('checks what the API says from the command line, and refuses an answer that was tampered with', async () => {
    const from = network.deployment.genesisTime + settled.epoch * network.deployment.epochLength
    const window = { from: String(from), to: String(from + network.deployment.epochLength) }
    const station = (fleet.stations[0] as (typeof fleet.stations)[number]).account.address
    const common = { rpcUrl: network.rpcUrl, dataDir: dir, ...window }
    const printed: string[] = []
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => printed.push(line))
    // a man in the middle that raises the first reading's first value by one
    const tampering = createServer(async (request, response) => {
      const answer = (await (await fetch(`${network.apiUrl}${request.url}`)).json()) as { readings: Proven[] }
      const first = answer.readings[0]
      if (first) first.reading.values[0] = String(BigInt(first.reading.values[0] as string) + 1n)
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify(answer))
    })
    await new Promise<void>((resolve) => tampering.listen(0, '127.0.0.1', resolve))
    const tamperingUrl = `http://127.0.0.1:${(tampering.address() as { port: number }).port}`
    try {
      await runReadings({ ...common, api: network.apiUrl, device: station })
      expect(process.exitCode ?? 0).toBe(0)
      expect(printed.at(-1)).toMatch(
        /^\d+ readings, every proof checked here against the readings roots on-chain/,
      )
      printed.length = 0
      await runAggregate({
        ...common,
        api: network.apiUrl,
        field: 'temperature',
        cell: (fleet.stations[0] as (typeof fleet.stations)[number]).h3Cell.toString(16),
        ring: '2',
      })
      expect(process.exitCode ?? 0).toBe(0)
      expect(printed).toContain('recomputed here from the readings returned: the same figures as the API')
      expect(printed.at(-1)).toMatch(/every proof checked here/)

      printed.length = 0
      await runReadings({ ...common, api: tamperingUrl, device: station })
      expect(process.exitCode).toBe(1)
      expect(printed.some((line) => line.startsWith('NOT VERIFIED:'))).toBe(true)
      printed.length = 0
      process.exitCode = 0
      await runAggregate({
        ...common,
        api: tamperingUrl,
        field: 'temperature',
        cell: (fleet.stations[0] as (typeof fleet.stations)[number]).h3Cell.toString(16),
        ring: '2',
      })
      expect(process.exitCode).toBe(1)
      expect(printed.filter((line) => line.startsWith('NOT VERIFIED:')).length).toBeGreaterThan(0)
    } finally {
      process.exitCode = 0
      log.mockRestore()
      tampering.close()
    }
  })

  it("streams settled epochs live, with a device's readings and their proofs, resuming after `since`", async () => {
    const station = (fleet.stations[1] as (typeof fleet.stations)[number]).account.address
    const controller = new AbortController()
    const response = await fetch(
      `${network.apiUrl}/v1/stream?device=${station}&since=${settled.epoch - 1n}`,
      {
        signal: controller.signal,
      },
    )
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events: { event: string; id?: string | undefined; data: Record<string, unknown> }[] = []
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let text = ''
    const deadline = Date.now() + 60_000
    // replayed: the settled epoch and its readings; live: the next epoch that settles
    while (!events.some((e) => e.event === 'epoch' && BigInt(e.data.epoch as string) > settled.epoch)) {
      if (Date.now() > deadline) throw new Error('no live epoch on the stream within 60 s')
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
      const blocks = text.split('\n\n')
      text = blocks.pop() ?? ''
      for (const block of blocks) {
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => !line.startsWith(':') && line.includes(': '))
            .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
        )
        if (fields.event && fields.data)
          events.push({ event: fields.event, id: fields.id, data: JSON.parse(fields.data) })
      }
    }
    controller.abort()
    expect(events[0]).toMatchObject({ event: 'epoch', id: settled.epoch.toString() })
    expect(events[0]?.data).toMatchObject({ readingsRoot: settled.readingsRoot, txHash: settled.txHash })
    const firstEpochReadings = events.slice(
      1,
      events.findIndex((e, i) => i > 0 && e.event === 'epoch'),
    )
    const expectedSeqs = (network.validators[0]?.store.verdicts(settled.epoch) ?? [])
      .filter((v) => v.status === 'accepted' && v.device === station.toLowerCase())
      .map((v) => v.seq.toString())
    expect(firstEpochReadings.map((e) => (e.data.reading as SignedReadingJson).seq)).toEqual(expectedSeqs)
    for (const e of firstEpochReadings) {
      expect(e.event).toBe('reading')
      expect(
        StandardMerkleTree.verify(
          settled.readingsRoot,
          ['bytes32'],
          [e.data.digest as Hex],
          e.data.proof as Hex[],
        ),
      ).toBe(true)
    }
  })

  it('shows the network on the dashboard, in a real browser, and follows epochs live', async () => {
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
      expect(await page.locator('svg#map path.land').count()).toBe(1)
      expect(await page.locator('svg#map circle').count()).toBe(fleet.stations.length)
      expect(await page.locator('#validators tbody tr').count()).toBe(3)
      expect(await page.locator(`#epochs tbody tr[data-epoch="${settled.epoch}"]`).count()).toBe(1)
      expect(await page.locator('dd[data-term="devices"]').textContent()).toBe(String(fleet.stations.length))

      // a device's readings, each with its proof, one click away
      const station = (fleet.stations[0] as (typeof fleet.stations)[number]).account.address
      await page.selectOption('#device-select', station)
      await page.waitForSelector('#readings tbody tr')
      expect(await page.locator(`circle.selected[data-device="${station}"]`).count()).toBe(1)
      const firstRow = await page.locator('#readings tbody tr').first().textContent()
      expect(firstRow).toMatch(/\d+\.\d{2}/) // a temperature in °C, from fixed point
      expect(firstRow).toMatch(/epoch \d+: \d+ hashes/)
      // and over time, one uPlot chart per field of its class, drawn on a canvas
      expect(await page.locator('#readings-chart .uplot').count()).toBe(4)
      expect(await page.locator('#readings-chart .uplot[data-field="temperature"] canvas').count()).toBe(1)
      // the browser checks every proof itself, against roots it reads from the chain
      await page.waitForSelector('#verified[data-done="true"]')
      const shown = await page.locator('#readings tbody tr').count()
      expect(await page.locator('td.verdict[data-verified="true"]').count()).toBe(shown)
      expect(await page.locator('#verified').textContent()).toContain(`${shown} of ${shown} shown checked`)
      const proven = (await (
        await fetch(`${network.apiUrl}/v1/readings?device=${station}&from=0&limit=1`)
      ).json()) as { readings: Proven[] }
      const verdicts = await page.evaluate(async (r) => {
        const depin = (globalThis as unknown as { depin: { verifyReading(r: unknown): Promise<boolean> } })
          .depin
        const tampered = { ...r, reading: { ...r.reading, values: ['-4000', ...r.reading.values.slice(1)] } }
        return [await depin.verifyReading(r), await depin.verifyReading(tampered)]
      }, proven.readings[0] as Proven)
      expect(verdicts).toEqual([true, false])

      // why it earned what it earned: its receipts, each checked here against the chain's logs
      await page.waitForSelector('#receipts-verified[data-done="true"]')
      const receiptRows = await page.locator('#receipts tbody tr').count()
      expect(receiptRows).toBeGreaterThan(0)
      expect(await page.locator('td.receipt-verdict[data-verified="true"]').count()).toBe(receiptRows)
      expect(await page.locator('#receipt-explanation').textContent()).toMatch(/^Epoch \d+: .* submitted/)
      const receipts = (await (
        await fetch(`${network.apiUrl}/v1/devices/${station}/receipts?limit=1`)
      ).json()) as { receipts: ProvenReceiptJson[] }
      const receiptVerdicts = await page.evaluate(async (r) => {
        const depin = (
          globalThis as unknown as { depin: { verifyReceipt(r: unknown, device: string): Promise<boolean> } }
        ).depin
        const inflated = { ...r, receipt: { ...r.receipt, accepted: r.receipt.accepted + 1 } }
        const device = r.receipt.device
        const other = `0x${'11'.repeat(20)}`
        return [
          await depin.verifyReceipt(r, device),
          await depin.verifyReceipt(inflated, device),
          await depin.verifyReceipt(r, other), // a genuine receipt, but not this device's
        ]
      }, receipts.receipts[0] as ProvenReceiptJson)
      expect(receiptVerdicts).toEqual([true, false, false])

      // the next epoch arrives on the live stream and is added at the top
      await page.waitForSelector('#epochs tbody tr.new', { timeout: 60_000 })
      expect(await page.locator('#live').textContent()).toBe('live')
      mkdirSync('.ci/results', { recursive: true })
      await page.screenshot({ path: '.ci/results/dashboard.png', fullPage: true })
      expect(errors).toEqual([])
    } finally {
      await browser.close()
    }
  })

  it('pays a claim of exactly the cumulative amount', async () => {
    const owner = getAddress(
      fleet.stations[0]?.account.address
        ? (network.indexer.store.getDevice(fleet.stations[0].account.address)?.owner as Address)
        : '0x',
    )
    const rewards = (await (await fetch(`${network.apiUrl}/v1/rewards/${owner}`)).json()) as {
      cumulativeAmount: string
      epoch: string
    }
    expect(BigInt(rewards.cumulativeAmount)).toBeGreaterThan(0n)
    const contracts = getContracts(
      await createChainClients({ rpcUrl: network.rpcUrl, privateKey: anvilAccounts[0] }),
      network.deployment,
    )
    const before = await contracts.depinToken.read.balanceOf([owner])
    await runClaim({ owner, api: network.apiUrl, rpcUrl: network.rpcUrl, dataDir: dir })
    const after = await contracts.depinToken.read.balanceOf([owner])
    expect(after - before).toBe(BigInt(rewards.cumulativeAmount))
    expect(await contracts.rewardDistributor.read.claimed([owner])).toBe(BigInt(rewards.cumulativeAmount))
  })

  it('refuses a replayed batch and a forged signature', async () => {
    const recent = batches[batches.length - 1] as FleetBatch
    const honestReadings = recent.readings.filter((r) => !recent.rejections.some((x) => x.reading === r))
    const post = async (readings: unknown[]) =>
      (await (
        await fetch(`${network.gatewayUrl}/v1/readings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ readings }),
        })
      ).json()) as { results: { status: string; reason?: string; duplicate?: boolean }[] }
    const replay = await post(honestReadings.map(toReadingJson))
    for (const r of replay.results) {
      // a resend of a device's last accepted reading is acknowledged as a duplicate and stored once
      expect(r.status === 'rejected' ? r.reason : r.duplicate ? 'duplicate' : 'stored').toMatch(
        /^(READING_REPLAYED|EPOCH_SEALED|duplicate)$/,
      )
    }
    const victim = honestReadings[0]
    if (!victim) throw new Error('no reading to forge')
    const forged = { ...toReadingJson(victim), seq: (victim.seq + 1000n).toString() }
    const answer = await post([forged])
    expect(answer.results[0]).toMatchObject({ status: 'rejected', reason: 'SIGNATURE_INVALID' })
  })
})
