import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { recoverSigner } from '../../src/readings/recoverReadingSigner.ts'
import { createFleet, type Fleet } from '../../src/usecases/environment/simulator/createFleet.ts'
import { type FleetBatch, runFleet } from '../../src/usecases/environment/simulator/runFleet.ts'
import { startFakeGateway, waitFor } from './fakeGateway.ts'

const blueprint = loadBlueprint('blueprints/environment.yaml')
const chainId = 31337
const deviceRegistry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const START = 1_764_201_600n

let gateway: Awaited<ReturnType<typeof startFakeGateway>>
beforeAll(async () => {
  gateway = await startFakeGateway({ chainId, deviceRegistry })
})
afterAll(async () => gateway?.stop())

/** Runs `fleet` until `ticks` batches arrived; tick k is stamped START + 10k. */
async function run(fleet: Fleet, ticks: number, stateDir?: string): Promise<FleetBatch[]> {
  const batches: FleetBatch[] = []
  let calls = 0n
  const running = runFleet({
    fleet,
    gatewayUrl: gateway.url,
    gateways: gateway.gateways,
    chainId,
    deviceRegistry,
    intervalSeconds: 0.01,
    clock: () => START + 10n * calls++,
    onBatch: (batch) => batches.push(batch),
    ...(stateDir ? { stateDir } : {}),
  })
  await waitFor(() => batches.length >= ticks, 60_000, `${ticks} batches`)
  await running.stop()
  return batches
}

describe('runFleet', () => {
  it('sends one reading per station per tick in one request; send-time faults do what they claim', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(chainId, deviceRegistry)
    const fleet = createFleet({
      size: 12,
      blueprint,
      seed: 11,
      startTime: START,
      faults: [
        { station: 0, kind: 'replay' },
        { station: 1, kind: 'forged' },
        { station: 2, kind: 'clockSkew' },
      ],
    })
    const [replayer, forger, skewed] = fleet.stations
    const firstRequest = gateway.requests.length
    const batches = await run(fleet, 3)
    const [b0, b1, b2] = batches as [FleetBatch, FleetBatch, FleetBatch]
    expect(gateway.requests.slice(firstRequest, firstRequest + 3).map((r) => r.length)).toEqual([12, 13, 13])
    expect(batches.slice(0, 3).map((b) => b.time)).toEqual([START, START + 10n, START + 20n])
    const of = (batch: FleetBatch, address: string) => batch.readings.filter((r) => r.device === address)

    // honest stations: every reading accepted, sequence numbers strictly increasing, time = tick time
    for (const station of fleet.stations.slice(3)) {
      const mine = batches.slice(0, 3).flatMap((b) => of(b, station.account.address))
      expect(mine.map((r) => r.seq)).toEqual([1n, 2n, 3n])
      expect(mine.map((r) => r.time)).toEqual([START, START + 10n, START + 20n])
    }

    // clockSkew: stamped an hour ahead
    expect(of(b1, skewed?.account.address as string).map((r) => r.time)).toEqual([b1.time + 3600n])

    // forged: the signature recovers to another key, and the gateway refuses it
    for (const reading of of(b0, forger?.account.address as string)) {
      const signer = recoverSigner(keccak, hash(reading), reading.signature)
      expect(signer).toEqual({ type: 'recovered', address: forger?.impostor?.address.toLowerCase() })
      expect(signer.type === 'recovered' && signer.address).not.toBe(forger?.account.address.toLowerCase())
    }
    expect(b0.rejections.map((r) => [r.reading.device, r.reason])).toEqual([
      [forger?.account.address, 'SIGNATURE_MISMATCH'],
    ])

    // replay: from the second tick on, the previous accepted reading again, after the new one
    const replayed1 = of(b1, replayer?.account.address as string)
    expect(replayed1.map((r) => r.seq)).toEqual([2n, 1n])
    expect(replayed1[1]).toEqual(of(b0, replayer?.account.address as string)[0])
    expect(of(b2, replayer?.account.address as string)[1]).toEqual(replayed1[0])
    expect(b1.rejections.map((r) => r.reason).sort()).toEqual(['READING_REPLAYED', 'SIGNATURE_MISMATCH'])
    expect(b1.accepted).toBe(11)
    expect(b1.failed).toBe(0)
  })

  it('splits a tick of more than 500 stations into requests of at most 500', async () => {
    const fleet = createFleet({ size: 501, blueprint, seed: 12, startTime: START })
    const firstRequest = gateway.requests.length
    const [batch] = await run(fleet, 1)
    expect(gateway.requests.slice(firstRequest, firstRequest + 2).map((r) => r.length)).toEqual([500, 1])
    expect(batch?.accepted).toBe(501)
  })

  it('reports a tick the gateway does not answer, and resumes sequence numbers from its state dir', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-state-'))
    const fleet = createFleet({ size: 4, blueprint, seed: 13, startTime: START })
    gateway.setMode('unavailable')
    const [down] = await run(fleet, 1, stateDir)
    expect(down).toMatchObject({ accepted: 0, failed: 4, errors: ['fake gateway: STORE_UNAVAILABLE'] })
    gateway.setMode('accept')
    const first = await run(fleet, 1, stateDir)
    const again = await run(createFleet({ size: 4, blueprint, seed: 13, startTime: START }), 1, stateDir)
    const seqs = (batches: FleetBatch[]) => batches.flatMap((b) => b.readings.map((r) => r.seq))
    expect(Math.min(...seqs(again).map(Number))).toBeGreaterThan(Math.max(...seqs(first).map(Number)))
    expect(again[0]?.accepted).toBe(4)
  })

  it("numbers its readings above what the stations' own counters of an older depin handed out", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-legacy-'))
    const fleet = createFleet({ size: 3, blueprint, seed: 14, startTime: START })
    // an older depin kept one counter per station; the fleet-wide one must start above them all
    writeFileSync(join(stateDir, `${fleet.stations[1]?.account.address}.seq`), '41\n')
    writeFileSync(join(stateDir, `${fleet.stations[2]?.account.address}.seq`), '17\n')
    const [batch] = await run(fleet, 1, stateDir)
    expect(batch?.readings.map((r) => r.seq)).toEqual([42n, 42n, 42n])
    expect(readFileSync(join(stateDir, 'fleet.seq'), 'utf8').trim()).toBe('42')
  })
})
