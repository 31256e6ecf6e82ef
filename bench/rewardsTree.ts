import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { buildRewardsTree, type RewardLeaf } from '../src/rewards/rewardsTree.ts'

const MB = 1024 * 1024

/** Raises peak[0] to value unless already higher (compare-and-swap, as the sampler worker does, so a reset is not lost). */
function raisePeak(peak: Int32Array, value: number): void {
  for (;;) {
    const current = Atomics.load(peak, 0)
    if (value <= current || Atomics.compareExchange(peak, 0, current, value) === current) return
  }
}

/**
 * Samples process.memoryUsage().rss every millisecond from a worker thread (RSS is process-wide), so the peak
 * inside the synchronous build is seen too; the running maximum in MB is kept in shared memory.
 */
function startRssSampler(): { peak: Int32Array; stop: () => Promise<number> } {
  const peak = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(
    `const { workerData: peak } = require('node:worker_threads')
     const sample = () => {
       const value = Math.ceil(process.memoryUsage().rss / ${MB})
       for (;;) {
         const current = Atomics.load(peak, 0)
         if (value <= current || Atomics.compareExchange(peak, 0, current, value) === current) return
       }
     }
     sample()
     setInterval(sample, 1)`,
    { eval: true, workerData: peak },
  )
  worker.unref()
  return { peak, stop: () => worker.terminate() }
}

/**
 * Deterministic pseudo-random leaves (xorshift32; generation is not part of the timings). Accounts are flat
 * strings, as JSON.parse would produce; concatenating them piecewise would leave memory-hungry rope strings.
 */
function makeLeaves(count: number, seed: number): RewardLeaf[] {
  let s = seed >>> 0 || 1
  const next = (): number => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
  const hexDigits = Buffer.from('0123456789abcdef', 'latin1')
  const chars = Buffer.from(`0x${'0'.repeat(40)}`, 'latin1')
  const leaves: RewardLeaf[] = []
  for (let i = 0; i < count; i++) {
    for (let k = 2; k < 42; k++) chars[k] = hexDigits[next() & 15] as number
    const cumulativeAmount = (BigInt(next()) << 48n) | BigInt(next())
    leaves.push({ account: chars.toString('latin1') as `0x${string}`, cumulativeAmount })
  }
  return leaves
}

const currentRssMB = (): number => Math.ceil(process.memoryUsage().rss / MB)

/** Builds a tree per size and generates every proof, reporting seconds and peak RSS (MB) for each. */
export async function benchRewardsTree(
  sizes: number[],
): Promise<Array<{ leaves: number; buildSeconds: number; proofsSeconds: number; peakRssMB: number }>> {
  const results: Awaited<ReturnType<typeof benchRewardsTree>> = []
  const sampler = startRssSampler()
  const gc = (globalThis as { gc?: () => void }).gc
  try {
    for (const size of sizes) {
      gc?.()
      let leaves: RewardLeaf[] | undefined = makeLeaves(size, size)
      Atomics.store(sampler.peak, 0, currentRssMB())
      const track = (): void => raisePeak(sampler.peak, currentRssMB())

      const t0 = performance.now()
      const tree = await buildRewardsTree(leaves)
      const buildSeconds = (performance.now() - t0) / 1000
      track()
      leaves = undefined

      const t1 = performance.now()
      let proofNodes = 0
      for (let p = 0; p < tree.size; p++) {
        proofNodes += tree.getProofAt(p).length
        if ((p & 0xffff) === 0) track()
      }
      const proofsSeconds = (performance.now() - t1) / 1000
      track()
      if (proofNodes === 0 && tree.size > 1) throw new Error('no proof nodes generated')

      results.push({ leaves: size, buildSeconds, proofsSeconds, peakRssMB: Atomics.load(sampler.peak, 0) })
    }
  } finally {
    await sampler.stop()
  }
  return results
}

async function main(): Promise<void> {
  const results = await benchRewardsTree([10_000, 100_000, 1_000_000])
  console.log('leaves      build s   all proofs s   peak RSS MB')
  for (const r of results) {
    console.log(
      `${String(r.leaves).padStart(9)}  ${r.buildSeconds.toFixed(3).padStart(8)}  ${r.proofsSeconds
        .toFixed(3)
        .padStart(13)}  ${String(r.peakRssMB).padStart(12)}`,
    )
  }
}

const entry = process.argv[1]
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  await main()
}
