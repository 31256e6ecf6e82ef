import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { bytesToHex, type Hex, hexToBytes } from 'viem'
import { DepinError } from '../errors.ts'
import { spawnModuleWorker } from '../protocol/spawnModuleWorker.ts'
import type { DigestSignerWorkerData, DigestSignJob, DigestSignReply } from './digestSignerWorker.ts'

export type CreateDigestSignerPoolOptions = {
  /** The keys it signs with (0x + 64 hex each), addressed by index. */
  keys: readonly Hex[]
  /** Worker threads (default: one per core, at most 4). */
  threads?: number
}

export type DigestSignerPool = {
  readonly threads: number
  /**
   * Signs each digest (32 bytes) with the key at the same index of `keyIndices`: 65-byte
   * signatures (r ‖ s ‖ v, v = 27 + recovery id) as 0x hex, in order — what viem's `sign` gives.
   */
  sign(digests: readonly Uint8Array[], keyIndices: readonly number[]): Promise<Hex[]>
  /** Stops the workers; signings still pending fail. */
  close(): Promise<void>
}

/** Digests per job: big enough that a message's cost vanishes, small enough to spread the work. */
const JOB_SIZE = 512

/**
 * Worker threads that sign digests with libsecp256k1 for many keys at once: what a simulated
 * fleet of thousands of devices needs each tick (≈ 40 µs a signature natively against ≈ 1.3 ms in
 * viem's pure JS), off the thread that runs the network. The keys live in the workers' memory.
 */
export function createDigestSignerPool(options: CreateDigestSignerPoolOptions): DigestSignerPool {
  const threads = options.threads ?? Math.min(4, availableParallelism())
  if (!Number.isInteger(threads) || threads < 1)
    throw new RangeError(`threads must be a positive integer: ${threads}`)
  const keys = new Uint8Array(32 * options.keys.length)
  options.keys.forEach((key, i) => {
    keys.set(hexToBytes(key), 32 * i)
  })
  const pending = new Map<
    number,
    { resolve: (signatures: Uint8Array) => void; reject: (error: Error) => void }
  >()
  let failure: Error | undefined
  const fail = (error: Error) => {
    failure ??= error
    for (const p of pending.values()) p.reject(failure)
    pending.clear()
  }
  const workers: Worker[] = []
  for (let t = 0; t < threads; t++) {
    const worker = spawnModuleWorker(import.meta.url, 'digestSignerWorker', {
      keys,
    } satisfies DigestSignerWorkerData)
    worker.on('message', (reply: DigestSignReply) => {
      const p = pending.get(reply.id)
      if (!p) return
      pending.delete(reply.id)
      if (reply.signatures) p.resolve(reply.signatures)
      else p.reject(new DepinError('SIGNING_FAILED', `a signing worker failed: ${reply.error}`))
    })
    worker.on('error', (error) =>
      fail(new DepinError('SIGNING_FAILED', `a signing worker failed: ${error.message}`)),
    )
    worker.on('exit', (code) => {
      if (!closing) fail(new DepinError('SIGNING_FAILED', `a signing worker exited (code ${code})`))
    })
    workers.push(worker)
  }
  let nextId = 0
  let nextWorker = 0
  let closing = false

  const job = (digests: Uint8Array, keyIndices: Uint32Array): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure)
      if (closing) return reject(new DepinError('SIGNING_CLOSED', 'the signing pool is closed'))
      const id = nextId++
      pending.set(id, { resolve, reject })
      const worker = workers[nextWorker++ % workers.length] as Worker
      worker.postMessage({ id, digests, keyIndices } satisfies DigestSignJob, [
        digests.buffer as ArrayBuffer,
        keyIndices.buffer as ArrayBuffer,
      ])
    })

  return {
    threads,
    async sign(digests, keyIndices) {
      if (digests.length !== keyIndices.length)
        throw new RangeError(`${digests.length} digests and ${keyIndices.length} key indices`)
      const jobs: Promise<Uint8Array>[] = []
      for (let start = 0; start < digests.length; start += JOB_SIZE) {
        const end = Math.min(digests.length, start + JOB_SIZE)
        const packed = new Uint8Array(32 * (end - start))
        for (let i = start; i < end; i++) {
          const digest = digests[i] as Uint8Array
          if (digest.length !== 32) throw new RangeError(`digest ${i} is ${digest.length} bytes, not 32`)
          packed.set(digest, 32 * (i - start))
        }
        jobs.push(job(packed, Uint32Array.from(keyIndices.slice(start, end))))
      }
      const signed: Hex[] = []
      for (const signatures of await Promise.all(jobs))
        for (let at = 0; at < signatures.length; at += 65)
          signed.push(bytesToHex(signatures.subarray(at, at + 65)))
      return signed
    },
    async close() {
      if (closing) return
      closing = true
      fail(new DepinError('SIGNING_CLOSED', 'the signing pool is closed'))
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise<void>((resolve) => {
              worker.once('exit', () => resolve())
              worker.postMessage('close')
              setTimeout(() => void worker.terminate().then(() => resolve()), 5_000).unref()
            }),
        ),
      )
    },
  }
}
