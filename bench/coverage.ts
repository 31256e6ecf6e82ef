/**
 * Connectivity judging as a validator does it: `count` witness records of a synthetic city (1,000
 * hotspots around Berlin, the blueprint's share of them chosen to beacon, each beacon heard by
 * count / beacons hotspots), every record a signed Beacon or Witness of the shared pipeline, judged
 * by judgeEpochInParallel (signatures on the worker pool, the proof-of-coverage rules of
 * blueprints/connectivity.yaml meanwhile) and computeEpochRewards, on the batch as a validator
 * decodes it from a gateway. Signatures by libsecp256k1
 * directly, cached under /tmp.
 * `npx tsx bench/coverage.ts [count]`
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { latLngToCell } from 'h3-js'
import { type Address, bytesToHex, getAddress, type Hex } from 'viem'
import { loadBlueprint } from '../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../src/crypto/keccak.ts'
import { createReadingHasher } from '../src/readings/createReadingHasher.ts'
import type { SignedReading } from '../src/readings/reading.ts'
import {
  beaconIdOf,
  beaconMessage,
  chooseBeaconers,
  type Hotspot,
} from '../src/usecases/connectivity/coverageRules.ts'
import { BEACON_KIND, beaconValues, coverageOf, WITNESS_KIND } from '../src/usecases/connectivity/index.ts'
import { mulberry32 } from '../src/usecases/simulatorRandom.ts'
import { computeEpochRewards } from '../src/validator/judge/computeEpochRewards.ts'
import { createSignatureCheckPool } from '../src/validator/judge/createSignatureCheckPool.ts'
import { judgeEpochInParallel } from '../src/validator/judge/judgeEpochInParallel.ts'
import type { DeviceRecord } from '../src/validator/judge/judgement.ts'
import { asValidatorsReceiveIt } from './judge.ts'

type Secp256k1 = {
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array
}
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1

export type BenchCoverageResult = {
  witnesses: number
  beacons: number
  threads: number
  /** judgeEpochInParallel + computeEpochRewards, seconds. */
  seconds: number
  /** Witness records per second of the whole (beacons are counted on top, not in the rate). */
  perSecond: number
  accepted: number
  rejectedByReason: Record<string, number>
  peakRssMB: number
}

const HOTSPOTS = 1_000
const CHAIN_ID = 31337
const DEVICE_REGISTRY: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const EPOCH = 0n
const EPOCH_START = 1_764_201_600n
/** Bump when the generated records change, so stale cached signatures are not reused. */
const GENERATION = 1

const sign = (digest: Uint8Array, key: Uint8Array): Hex => {
  const { signature, recid } = secp256k1.ecdsaSign(digest, key)
  return `${bytesToHex(signature)}${(27 + recid).toString(16)}` as Hex
}

export async function benchCoverage(count: number): Promise<BenchCoverageResult> {
  const keccak = await loadKeccak256()
  const blueprint = loadBlueprint(resolve(import.meta.dirname, '../blueprints/connectivity.yaml'))
  const { parameters, radios } = coverageOf(blueprint)
  const kinds = [BEACON_KIND, WITNESS_KIND]
  const digest = await createReadingHasher(CHAIN_ID, DEVICE_REGISTRY, kinds)
  const random = mulberry32(42)
  const keys = Array.from({ length: HOTSPOTS }, (_, i) => keccak(Buffer.from(`bench hotspot ${i}`)))
  const addresses = keys.map((key) =>
    getAddress(bytesToHex(keccak(secp256k1.publicKeyCreate(key, false).subarray(1)).subarray(12))),
  )
  const devices = new Map<string, DeviceRecord>()
  const hotspots = new Map<string, Hotspot>()
  addresses.forEach((device, i) => {
    const cell = BigInt(
      `0x${latLngToCell(52.52 + (random() - 0.5) * 0.1, 13.405 + (random() - 0.5) * 0.16, 12)}`,
    )
    const owner = addresses[i - (i % 5)] as Address // five hotspots an owner
    devices.set(device.toLowerCase(), {
      device,
      owner,
      deviceClass: 1,
      h3Cell: cell,
      status: 'active',
      registeredAt: 0n,
    })
    hotspots.set(device.toLowerCase(), {
      device,
      owner,
      cell,
      deviceClass: 1,
      status: 'active',
      registeredAt: 0n,
    })
  })
  const randomness = bytesToHex(keccak(Buffer.from('bench randomness')))
  const chosen = chooseBeaconers(
    randomness,
    hotspots,
    radios,
    parameters.beaconShareBps,
    EPOCH_START,
    parameters.distanceResolution,
  )
  const keyOf = new Map(addresses.map((a, i) => [a.toLowerCase(), keys[i] as Uint8Array]))
  const message = beaconMessage(CHAIN_ID, DEVICE_REGISTRY, EPOCH, randomness)

  // the records, unsigned; then their signatures (from the cache when it matches)
  const records: Omit<SignedReading, 'signature'>[] = []
  const frequencyKhz = 868_100n
  const perBeacon = Math.ceil(count / chosen.length)
  const nextSeq = new Map<string, bigint>()
  const seqOf = (device: string) => {
    const seq = (nextSeq.get(device) ?? 0n) + 1n
    nextSeq.set(device, seq)
    return seq
  }
  let witnesses = 0
  for (const beaconer of chosen) {
    const payload = sign(
      Buffer.from(message.slice(2), 'hex'),
      keyOf.get(beaconer.toLowerCase()) as Uint8Array,
    )
    records.push({
      device: beaconer,
      seq: seqOf(beaconer),
      time: EPOCH_START + 5n,
      kind: 0,
      values: beaconValues(payload, frequencyKhz),
    })
    const beacon = BigInt(beaconIdOf(payload))
    for (let k = 0; k < perBeacon && witnesses < count; k++, witnesses++) {
      const witness = addresses[Math.floor(random() * HOTSPOTS)] as Address
      records.push({
        device: witness,
        seq: seqOf(witness),
        time: EPOCH_START + 5n,
        kind: 1,
        values: [beacon, -11_000n, 500n, frequencyKhz],
      })
    }
  }
  const cacheFile = `/tmp/depin-bench-coverage-g${GENERATION}-${count}.sig`
  const cached = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined
  const signatures = cached?.length === records.length * 65 ? cached : Buffer.alloc(records.length * 65)
  if (signatures !== cached) {
    records.forEach((record, r) => {
      const { signature, recid } = secp256k1.ecdsaSign(
        digest(record),
        keyOf.get(record.device.toLowerCase()) as Uint8Array,
      )
      signatures.set(signature, r * 65)
      signatures[r * 65 + 64] = 27 + recid
    })
    writeFileSync(cacheFile, signatures)
  }
  const readings = await asValidatorsReceiveIt(
    records.map((record, r) => ({
      ...record,
      signature: `0x${signatures.toString('hex', r * 65, r * 65 + 65)}`,
    })),
    kinds,
  )
  records.length = 0

  const threads = availableParallelism()
  const pool = createSignatureCheckPool({
    chainId: CHAIN_ID,
    deviceRegistry: DEVICE_REGISTRY,
    kinds,
    threads,
  })
  try {
    await pool.check(readings.slice(0, threads * 16)) // workers started and warm
    ;(globalThis as { gc?: () => void }).gc?.()
    if (process.env.BENCH_COVERAGE_PHASES) {
      const t0 = performance.now()
      await pool.check(readings, undefined, { eager: true })
      console.error(`signatures alone: ${((performance.now() - t0) / 1000).toFixed(2)} s`)
      ;(globalThis as { gc?: () => void }).gc?.()
    }
    const started = performance.now()
    const judged = await judgeEpochInParallel(
      {
        blueprint,
        epoch: EPOCH,
        epochStart: EPOCH_START,
        epochEnd: EPOCH_START + BigInt(blueprint.epochs.lengthSeconds),
        randomness,
        network: { chainId: CHAIN_ID, deviceRegistry: DEVICE_REGISTRY },
        readings,
        devices,
        digest,
        keccak,
      },
      pool,
    )
    const rewards = computeEpochRewards({
      blueprint,
      epoch: EPOCH,
      scores: judged.devices,
      previousSigners: [],
      previousCumulative: new Map(),
    })
    const seconds = (performance.now() - started) / 1000
    if (rewards.total > rewards.emission) throw new Error('rewards above emission')
    if (judged.rejectedByReason.SIGNATURE_INVALID !== 0) throw new Error('a bench signature did not verify')
    return {
      witnesses,
      beacons: chosen.length,
      threads,
      seconds,
      perSecond: witnesses / seconds,
      accepted: judged.accepted,
      rejectedByReason: Object.fromEntries(Object.entries(judged.rejectedByReason).filter(([, n]) => n > 0)),
      peakRssMB: Math.ceil(process.resourceUsage().maxRSS / 1024),
    }
  } finally {
    await pool.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await benchCoverage(Number(process.argv[2] ?? 100_000)))
}
