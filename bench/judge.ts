/**
 * Speed of the judge: `node --expose-gc --import tsx bench/judge.ts [count…]` (default 100000 1000000;
 * `npx tsx bench/judge.ts` works too, without collecting garbage between runs).
 * Generates `count` signed readings from ≈ count/100 weather stations around Berlin (1 % lying,
 * 1 % stuck; signatures by libsecp256k1 directly, cached under /tmp), seals them in a gateway's
 * batch and decodes it as a validator does, then times judgeEpoch (one thread),
 * judgeEpochInParallel (a worker pool) and computeEpochRewards, against the raw rate of signature
 * recovery on one core.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { latLngToCell } from 'h3-js'
import { type Address, bytesToHex, getAddress } from 'viem'
import type { Blueprint } from '../src/blueprint/loadBlueprint.ts'
import { loadBlueprint } from '../src/blueprint/loadBlueprint.ts'
import { type Keccak256, loadKeccak256 } from '../src/crypto/keccak.ts'
import { compareReadings, decodeBatch, encodeBatch } from '../src/gateway/batchFormat.ts'
import { createReadingHasher } from '../src/readings/createReadingHasher.ts'
import type { SignedReading } from '../src/readings/reading.ts'
import type { RecordKind } from '../src/readings/recordKinds.ts'
import { recoverSigner } from '../src/readings/recoverReadingSigner.ts'
import { computeEpochRewards } from '../src/validator/judge/computeEpochRewards.ts'
import { createSignatureCheckPool } from '../src/validator/judge/createSignatureCheckPool.ts'
import { judgeCheckedReadings } from '../src/validator/judge/judgeCheckedReadings.ts'
import { type JudgeEpochInput, judgeEpoch } from '../src/validator/judge/judgeEpoch.ts'
import { judgeEpochInParallel } from '../src/validator/judge/judgeEpochInParallel.ts'
import type { DeviceRecord } from '../src/validator/judge/judgement.ts'
import { orderReadings } from '../src/validator/judge/orderReadings.ts'

type Secp256k1 = {
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array
}
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1

const CHAIN_ID = 31337
const DEVICE_REGISTRY: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const EPOCH_START = 1_764_000_000n
/** Every station reads every 6 s (the blueprint's minimum interval is 5 s). */
const INTERVAL = 6n
const READINGS_PER_DEVICE = 100
/** Bump when the generated batch changes, so stale cached signatures are not reused. */
const GENERATION = 1

/** xorshift32: deterministic noise, so cached signatures stay valid for regenerated readings. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
}

type Fleet = {
  devices: Map<string, DeviceRecord>
  keys: Uint8Array[]
  addresses: Address[]
  kinds: ('honest' | 'liar' | 'stuck')[]
}

/** ≈ count/100 stations scattered over Berlin (res-8 cells), 10 per owner. */
function makeFleet(deviceCount: number, keccak: Keccak256): Fleet {
  const random = prng(7)
  const devices = new Map<string, DeviceRecord>()
  const keys: Uint8Array[] = []
  const addresses: Address[] = []
  const kinds: Fleet['kinds'] = []
  const ownerCount = Math.max(1, Math.floor(deviceCount / 10))
  const owners = Array.from({ length: ownerCount }, (_, j) =>
    getAddress(bytesToHex(keccak(Buffer.from(`bench-owner-${j}`)).subarray(12))),
  )
  for (let i = 0; i < deviceCount; i++) {
    const key = keccak(Buffer.from(`bench-device-${i}`))
    const address = getAddress(
      bytesToHex(keccak(secp256k1.publicKeyCreate(key, false).subarray(1)).subarray(12)),
    )
    const lat = 52.4 + (random() % 25_000) / 100_000
    const lng = 13.1 + (random() % 60_000) / 100_000
    keys.push(key)
    addresses.push(address)
    kinds.push(i % 100 === 7 ? 'liar' : i % 100 === 13 ? 'stuck' : 'honest')
    devices.set(address.toLowerCase(), {
      device: address,
      owner: owners[i % ownerCount] as Address,
      deviceClass: 1,
      h3Cell: BigInt(`0x${latLngToCell(lat, lng, 8)}`),
      status: 'active',
    })
  }
  return { devices, keys, addresses, kinds }
}

/**
 * `count` readings in arrival order (by time, stations interleaved). Signing is the slow part
 * (libsecp256k1 ≈ tens of thousands per second), so signatures are cached in /tmp by count.
 */
export async function makeBatch(
  count: number,
): Promise<{ fleet: Fleet; readings: SignedReading[]; generatedSeconds: number }> {
  const t0 = performance.now()
  const keccak = await loadKeccak256()
  const digest = await createReadingHasher(CHAIN_ID, DEVICE_REGISTRY)
  const deviceCount = Math.max(1, Math.round(count / READINGS_PER_DEVICE))
  const fleet = makeFleet(deviceCount, keccak)
  const cacheFile = `/tmp/depin-bench-judge-g${GENERATION}-${count}.sig`
  const cached = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined
  const signatures = cached?.length === count * 65 ? cached : Buffer.alloc(count * 65)
  const sign = signatures !== cached
  const random = prng(11)
  const readings: SignedReading[] = []
  for (let r = 0; r < count; r++) {
    const d = r % deviceCount
    const k = Math.floor(r / deviceCount)
    const kind = fleet.kinds[d]
    const noise = (spread: number) => BigInt((random() % (2 * spread + 1)) - spread)
    const values =
      kind === 'stuck'
        ? [2150n, 5520n, 123n, 10132n]
        : [
            2150n + (kind === 'liar' ? 1500n : 0n) + noise(80),
            5520n + noise(300),
            123n + noise(30),
            10132n + noise(15),
          ]
    const reading = {
      device: fleet.addresses[d] as Address,
      seq: BigInt(k + 1),
      time: EPOCH_START + BigInt(k) * INTERVAL,
      values,
    }
    if (sign) {
      const { signature, recid } = secp256k1.ecdsaSign(digest(reading), fleet.keys[d] as Uint8Array)
      signatures.set(signature, r * 65)
      signatures[r * 65 + 64] = 27 + recid
    }
    readings.push({ ...reading, signature: `0x${signatures.toString('hex', r * 65, r * 65 + 65)}` })
  }
  if (sign) writeFileSync(cacheFile, signatures)
  return { fleet, readings, generatedSeconds: (performance.now() - t0) / 1000 }
}

/**
 * A batch as a validator judges it: sealed by a gateway (canonical order, encoded) and decoded,
 * so its readings lie in memory as decodeBatch allocates them, device by device. (Judged in
 * arrival order instead, each device's readings scattered among all the others', the rules spend
 * about three times as long waiting on memory.)
 */
export async function asValidatorsReceiveIt(
  readings: SignedReading[],
  kinds?: readonly RecordKind[],
): Promise<SignedReading[]> {
  const keccak = await loadKeccak256()
  const sealed = encodeBatch(keccak, 1n, [...readings].sort(compareReadings))
  return decodeBatch(keccak, sealed.bytes, sealed.hash, kinds).readings
}

/** Recoveries per second of recoverSigner on this thread, over about `seconds`. */
export async function benchRecoverRate(seconds: number): Promise<number> {
  const keccak = await loadKeccak256()
  const samples = Array.from({ length: 1024 }, (_, i) => {
    const digest = keccak(Buffer.from(`recover-${i}`))
    const { signature, recid } = secp256k1.ecdsaSign(digest, keccak(Buffer.from(`recover-key-${i % 16}`)))
    return { digest, signature: `${bytesToHex(signature)}${(27 + recid).toString(16)}` as const }
  })
  const run = (ms: number): number => {
    let done = 0
    const t0 = performance.now()
    while (performance.now() < t0 + ms) {
      for (let i = 0; i < 256; i++) {
        const sample = samples[(done + i) & 1023] as (typeof samples)[number]
        if (recoverSigner(keccak, sample.digest, sample.signature).type !== 'recovered') {
          throw new Error('recovery failed')
        }
      }
      done += 256
    }
    return done / ((performance.now() - t0) / 1000)
  }
  run(500) // warm-up: JIT, caches
  return run(seconds * 1000)
}

export type BenchJudgeResult = {
  readings: number
  devices: number
  accepted: number
  threads: number
  generatedSeconds: number
  /** First run, phase by phase (orderReadings, pool check in batch order, judgeCheckedReadings): where the time goes. */
  phases: { orderSeconds: number; signaturesSeconds: number; rulesSeconds: number }
  /** Second run: judgeEpochInParallel as a validator calls it. */
  parallelSeconds: number
  rewardsSeconds: number
  /** Readings per second of judgeEpochInParallel + computeEpochRewards. */
  readingsPerSecond: number
  /** judgeEpoch on the main thread alone (only measured up to 200,000 readings). */
  serialSeconds: number | undefined
  /** Peak RSS of the process so far (the kernel's maxRSS, all threads, batch generation included), in MB. */
  peakRssMB: number
}

/** Collects garbage between runs when node runs with --expose-gc, so one run's garbage does not slow the next. */
const collectGarbage = (): void => (globalThis as { gc?: () => void }).gc?.()

/** Generates `count` readings and times the judge and the rewards on them. */
export async function benchJudge(
  count: number,
  options: { threads?: number } = {},
): Promise<BenchJudgeResult> {
  const threads = options.threads ?? availableParallelism()
  const pool = createSignatureCheckPool({ chainId: CHAIN_ID, deviceRegistry: DEVICE_REGISTRY, threads })
  try {
    const blueprint: Blueprint = loadBlueprint(resolve(import.meta.dirname, '../blueprints/environment.yaml'))
    const made = await makeBatch(count)
    const { fleet, generatedSeconds } = made
    const readings = await asValidatorsReceiveIt(made.readings)
    made.readings.length = 0
    const input: JudgeEpochInput = {
      blueprint,
      epoch: 1n,
      epochStart: EPOCH_START,
      epochEnd: EPOCH_START + BigInt(READINGS_PER_DEVICE) * INTERVAL,
      readings,
      devices: fleet.devices,
      digest: await createReadingHasher(CHAIN_ID, DEVICE_REGISTRY),
      keccak: await loadKeccak256(),
    }
    await pool.check(readings.slice(0, threads * 16)) // workers started and warm
    collectGarbage()

    // 1. Phase by phase, as judgeEpochInParallel does them. Only figures leave the function: a result
    // kept alive would weigh on the garbage collector in the next run.
    const phases = await (async () => {
      const t0 = performance.now()
      const ordered = orderReadings(readings)
      const t1 = performance.now()
      const positionOf = new Int32Array(readings.length).fill(-1)
      ordered.sources.forEach((source, p) => {
        positionOf[source] = p
      })
      const checks = await pool.check(ordered.readings, Uint32Array.from(positionOf.filter((p) => p >= 0)))
      const t2 = performance.now()
      const readingsRoot = judgeCheckedReadings({ ...input, ordered, checks }).readingsRoot
      const t3 = performance.now()
      return {
        readingsRoot,
        orderSeconds: (t1 - t0) / 1000,
        signaturesSeconds: (t2 - t1) / 1000,
        rulesSeconds: (t3 - t2) / 1000,
      }
    })()
    collectGarbage()

    // 2. As a validator runs it.
    const run = await (async () => {
      const t0 = performance.now()
      const judged = await judgeEpochInParallel(input, pool)
      const t1 = performance.now()
      const rewards = computeEpochRewards({
        blueprint,
        epoch: input.epoch,
        scores: judged.devices,
        previousSigners: [],
        previousCumulative: new Map(),
      })
      const t2 = performance.now()
      if (rewards.total > rewards.emission) throw new Error('rewards above emission')
      if (judged.readingsRoot !== phases.readingsRoot) throw new Error('the judge is not deterministic')
      return { accepted: judged.accepted, judgeMs: t1 - t0, rewardsMs: t2 - t1 }
    })()
    const peakRssMB = Math.ceil(process.resourceUsage().maxRSS / 1024)
    collectGarbage()

    // 3. On one thread, for comparison.
    let serialSeconds: number | undefined
    if (count <= 200_000) {
      const s0 = performance.now()
      const serialRoot = judgeEpoch(input).readingsRoot
      serialSeconds = (performance.now() - s0) / 1000
      if (serialRoot !== phases.readingsRoot) throw new Error('serial and parallel judges disagree')
    }
    return {
      readings: count,
      devices: fleet.devices.size,
      accepted: run.accepted,
      threads,
      generatedSeconds,
      phases: {
        orderSeconds: phases.orderSeconds,
        signaturesSeconds: phases.signaturesSeconds,
        rulesSeconds: phases.rulesSeconds,
      },
      parallelSeconds: run.judgeMs / 1000,
      rewardsSeconds: run.rewardsMs / 1000,
      readingsPerSecond: count / ((run.judgeMs + run.rewardsMs) / 1000),
      serialSeconds,
      peakRssMB,
    }
  } finally {
    await pool.close()
  }
}

async function main(): Promise<void> {
  const counts = process.argv.slice(2).map(Number)
  const perCore = await benchRecoverRate(3)
  const cores = availableParallelism()
  console.log(
    `recoverSigner: ${Math.round(perCore)} /s on one core; ${cores} cores → ${Math.round(perCore * cores)} /s`,
  )
  for (const count of counts.length > 0 ? counts : [100_000, 1_000_000]) {
    const r = await benchJudge(count)
    const allCores = perCore * cores
    const { orderSeconds, signaturesSeconds, rulesSeconds } = r.phases
    console.log(
      [
        `\n${r.readings} readings, ${r.devices} devices, ${r.accepted} accepted (batch made in ${r.generatedSeconds.toFixed(1)} s)`,
        `  phases: order ${orderSeconds.toFixed(2)} s, signatures on ${r.threads} workers ${signaturesSeconds.toFixed(2)} s (${Math.round(r.readings / signaturesSeconds)} /s), rules and root ${rulesSeconds.toFixed(2)} s`,
        `  judgeEpochInParallel ${r.parallelSeconds.toFixed(2)} s + computeEpochRewards ${r.rewardsSeconds.toFixed(2)} s = ${Math.round(r.readingsPerSecond)} readings/s, ${Math.round((100 * r.readingsPerSecond) / allCores)} % of raw recovery on all cores (target ≥ 60 %)`,
        r.serialSeconds === undefined
          ? '  judgeEpoch on one thread: not measured above 200,000 readings'
          : `  judgeEpoch on one thread: ${r.serialSeconds.toFixed(2)} s = ${Math.round(r.readings / r.serialSeconds)} readings/s`,
        `  peak RSS ${r.peakRssMB} MB`,
      ].join('\n'),
    )
    collectGarbage()
  }
}

const entry = process.argv[1]
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  await main()
}
