import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import type { Address } from 'viem'
import { DepinError } from '../../errors.ts'
import { spawnModuleWorker } from '../../protocol/spawnModuleWorker.ts'
import { createRecordWords } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { RecordKind } from '../../readings/recordKinds.ts'
import type { SignatureChecks } from './checkReadingSignatures.ts'
import { packRecords } from './packedRecords.ts'
import type {
  CloseWorker,
  SignatureCheckJob,
  SignatureCheckReply,
  SignatureCheckWorkerData,
} from './signatureCheckWorker.ts'

export type CreateSignatureCheckPoolOptions = {
  /** The domain readings are signed in: chain id and DeviceRegistry. */
  chainId: number
  deviceRegistry: Address
  /** The use case's record kinds (default: the environment's Reading). */
  kinds?: readonly RecordKind[]
  /** Worker threads (default: os.availableParallelism()). */
  threads?: number
  /**
   * Most readings per job sent to a worker (default 1024). Batches are cut into at least 16 jobs
   * per worker so that no worker idles long at the end while another finishes a big job.
   */
  chunkSize?: number
}

export type SignatureCheckPool = {
  readonly threads: number
  /**
   * The same result checkReadingSignatures gives, computed on the worker threads.
   * @param visitOrder a permutation of the readings' indices: the order they are handed to the
   * workers in (results are by index all the same). Default: index order. Visiting them in the order
   * they lie in memory (arrival order) keeps the main thread's packing (packedRecords.ts) from missing the cache
   * on every reading, which at 10^6 readings takes as long as several workers' recoveries.
   */
  check(
    readings: readonly SignedReading[],
    visitOrder?: Uint32Array,
    options?: CheckOptions,
  ): Promise<SignatureChecks>
  /**
   * check, handing out at once the buffers the workers fill (`checks`: to be read only once `done`
   * resolved), so a caller can lay out what will read them meanwhile.
   */
  start(
    readings: readonly SignedReading[],
    visitOrder?: Uint32Array,
    options?: CheckOptions,
  ): { checks: SignatureChecks; done: Promise<SignatureChecks> }
  /**
   * True once every worker has loaded (on a loaded machine that takes seconds): a caller with a
   * deadline checks on its own thread until then rather than wait.
   */
  isReady(): boolean
  /** Resolves once every worker has loaded; rejects if one failed first. */
  readonly ready: Promise<void>
  /** Stops the workers; pending checks fail. */
  close(): Promise<void>
}

export type CheckOptions = {
  /**
   * Hand half the jobs to the workers at once, in turn, and the rest two at a time as they finish
   * (instead of all two at a time): for a caller that keeps its own thread busy meanwhile (and so
   * could not hand out the next job for a while), at the price of half the readings' packed copies
   * waiting in the workers' queues at once.
   */
  eager?: boolean
}

/** Milliseconds a closing pool waits for each worker to end by itself before terminating it. */
const CLOSE_GRACE_MS = 15_000

/** Jobs a worker holds at once: one running, one queued, so it never waits for the main thread. */
const JOBS_PER_WORKER = 2

/** A job waiting for a worker: its records are packed only when it is handed out. */
type PendingJob = { id: number; pack: () => SignatureCheckJob; done: (error?: Error) => void }

/**
 * Worker threads that check reading signatures (EIP-712 digest + libsecp256k1 recovery, the
 * judge's dominant cost) in parallel. Deterministic: each reading's outcome depends on that reading
 * alone and lands at its own index in shared buffers, whichever worker checked it. Create one per
 * validator and reuse it: a worker takes ≈ 0.5 s to start.
 */
export function createSignatureCheckPool(options: CreateSignatureCheckPoolOptions): SignatureCheckPool {
  const threads = options.threads ?? availableParallelism()
  const maxChunk = options.chunkSize ?? 1024
  if (!Number.isInteger(threads) || threads < 1)
    throw new RangeError(`threads must be a positive integer: ${threads}`)
  if (!Number.isInteger(maxChunk) || maxChunk < 1)
    throw new RangeError(`chunkSize must be a positive integer: ${maxChunk}`)

  const queue: PendingJob[] = []
  const running = new Map<number, PendingJob>()
  const workers: { worker: Worker; jobs: Set<number> }[] = []
  let nextId = 0
  let failure: Error | undefined
  let loaded = 0
  let markReady: () => void = () => {}
  let markFailed: (error: Error) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve
    markFailed = reject
  })
  ready.catch(() => {}) // a failure also reaches every check; nobody need await this

  const fail = (error: Error): void => {
    failure ??= error
    markFailed(failure)
    for (const pending of [...running.values(), ...queue]) pending.done(failure)
    running.clear()
    queue.length = 0
  }
  const send = (slot: (typeof workers)[number], pending: PendingJob): void => {
    let job: SignatureCheckJob
    try {
      job = pending.pack()
    } catch (error) {
      pending.done(error instanceof Error ? error : new Error(String(error)))
      return
    }
    running.set(pending.id, pending)
    slot.jobs.add(pending.id)
    slot.worker.postMessage(job, [job.packed]) // moved, not copied
  }
  const dispatch = (): void => {
    for (const slot of workers) {
      while (slot.jobs.size < JOBS_PER_WORKER && queue.length > 0) {
        send(slot, queue.shift() as PendingJob)
      }
    }
  }

  /** The first `count` queued jobs to the workers now, in turn (CheckOptions.eager). */
  const dispatchAhead = (count: number): void => {
    let turn = 0
    for (let k = 0; k < count && queue.length > 0; k++) {
      const slot = workers[turn++ % workers.length] as (typeof workers)[number]
      send(slot, queue.shift() as PendingJob)
    }
  }

  const words = createRecordWords(options.kinds)
  const closed = new SharedArrayBuffer(4)
  const workerData: SignatureCheckWorkerData = {
    chainId: options.chainId,
    deviceRegistry: options.deviceRegistry,
    closed,
    ...(options.kinds ? { kinds: [...options.kinds] } : {}),
  }
  for (let t = 0; t < threads; t++) {
    const slot = {
      worker: spawnModuleWorker(import.meta.url, 'signatureCheckWorker', workerData),
      jobs: new Set<number>(),
    }
    slot.worker.on('message', (reply: SignatureCheckReply) => {
      if (reply.id === -1) {
        if (++loaded === threads) markReady()
        return
      }
      slot.jobs.delete(reply.id)
      const pending = running.get(reply.id)
      running.delete(reply.id)
      pending?.done(
        reply.error === undefined ? undefined : new DepinError('JUDGE_WORKER_FAILED', reply.error),
      )
      dispatch()
    })
    slot.worker.on('error', (cause) =>
      fail(new DepinError('JUDGE_WORKER_FAILED', 'a signature worker failed', { cause })),
    )
    slot.worker.on('exit', (code) => {
      if (failure === undefined)
        fail(new DepinError('JUDGE_WORKER_EXITED', `a signature worker exited (code ${code})`))
    })
    workers.push(slot)
  }

  const start: SignatureCheckPool['start'] = (readings, visitOrder, checkOptions = {}) => {
    const n = readings.length
    const empty = { digests: new Uint8Array(0), leafHashes: new Uint8Array(0), outcomes: new Uint8Array(0) }
    if (failure !== undefined) return { checks: empty, done: Promise.reject(failure) }
    if (visitOrder !== undefined && visitOrder.length !== n) {
      const error = new RangeError(`visitOrder has ${visitOrder.length} indices for ${n} readings`)
      return { checks: empty, done: Promise.reject(error) }
    }
    const digests = new SharedArrayBuffer(n * 32)
    const leafHashes = new SharedArrayBuffer(n * 32)
    const outcomes = new SharedArrayBuffer(n)
    const checks: SignatureChecks = {
      digests: new Uint8Array(digests),
      leafHashes: new Uint8Array(leafHashes),
      outcomes: new Uint8Array(outcomes),
    }
    if (n === 0) return { checks, done: Promise.resolve(checks) }
    const chunkSize = Math.min(maxChunk, Math.max(64, Math.ceil(n / (threads * 16))))
    const done = new Promise<SignatureChecks>((resolve, reject) => {
      let left = Math.ceil(n / chunkSize)
      let rejected = false
      const settle = (error?: Error): void => {
        if (rejected) return
        if (error !== undefined) {
          rejected = true
          reject(error)
        } else if (--left === 0) resolve(checks)
      }
      for (let offset = 0; offset < n; offset += chunkSize) {
        const end = Math.min(n, offset + chunkSize)
        const indices = new Uint32Array(end - offset)
        for (let j = 0; j < indices.length; j++) indices[j] = visitOrder?.[offset + j] ?? offset + j
        const id = nextId++
        const pack = (): SignatureCheckJob => ({
          id,
          packed: packRecords(readings, indices, words),
          indices,
          digests,
          leafHashes,
          outcomes,
        })
        queue.push({ id, pack, done: settle })
      }
      // eager: half at once keeps the workers busy while this thread runs the rules (a fraction of
      // the checks' time); the rest as they finish, so neither idles at the end while the other
      // works off its share
      if (checkOptions.eager) dispatchAhead(Math.ceil(Math.ceil(n / chunkSize) / 2))
      dispatch()
    })
    return { checks, done }
  }

  return {
    threads,
    ready,
    isReady: () => loaded === threads && failure === undefined,
    start,
    check: (readings, visitOrder, checkOptions) => start(readings, visitOrder, checkOptions).done,
    close: async () => {
      failure ??= new DepinError('JUDGE_POOL_CLOSED', 'the signature check pool is closed')
      fail(failure)
      // Each worker is asked to end and given time to (it may still be loading, or in the middle
      // of a job): terminating a thread inside libsecp256k1's native code, or while it loads the
      // addon, aborts the whole process. Only one that does not end in time is terminated.
      Atomics.store(new Int32Array(closed), 0, 1)
      await Promise.all(
        workers.map(async ({ worker }) => {
          const ended = new Promise<boolean>((resolve) => {
            worker.once('exit', () => resolve(true))
            setTimeout(() => resolve(false), CLOSE_GRACE_MS).unref()
          })
          worker.postMessage('close' satisfies CloseWorker)
          if (!(await ended)) await worker.terminate()
        }),
      )
    },
  }
}
