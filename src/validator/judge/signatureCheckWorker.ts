/**
 * Worker thread of createSignatureCheckPool: checks jobs of readings with its own hasher and keccak,
 * writing digests, leaf hashes and outcomes straight into the pool's shared buffers, at each
 * reading's index.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { Address } from 'viem'
import { loadKeccak256 } from '../../crypto/keccak.ts'
import { createReadingHasher } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import type { RecordKind } from '../../readings/recordKinds.ts'
import { checkReadingSignature } from './checkReadingSignatures.ts'

export type SignatureCheckWorkerData = {
  chainId: number
  deviceRegistry: Address
  kinds?: RecordKind[]
  /** Int32 [0] set to 1 once the pool closes: jobs still queued are skipped. */
  closed?: SharedArrayBuffer
}

/** Sent by the pool when it closes: the worker stops taking messages, and so ends by itself. */
export type CloseWorker = 'close'

export type SignatureCheckJob = {
  id: number
  readings: SignedReading[]
  /** Where each reading's results go in the shared buffers. */
  indices: Uint32Array
  digests: SharedArrayBuffer
  leafHashes: SharedArrayBuffer
  outcomes: SharedArrayBuffer
}

/** A job's outcome; `id` −1 (no job) once the worker has loaded and is ready for jobs. */
export type SignatureCheckReply = { id: number; error?: string }

const port = parentPort
if (port === null) throw new Error('signatureCheckWorker runs only as a worker thread')
const { chainId, deviceRegistry, kinds, closed } = workerData as SignatureCheckWorkerData
const closedFlag = closed ? new Int32Array(closed) : undefined
const keccak = await loadKeccak256()
const digest = await createReadingHasher(chainId, deviceRegistry, kinds)

port.on('message', (job: SignatureCheckJob | CloseWorker) => {
  // never killed in the middle of a native call (which aborts the whole process): the pool asks,
  // and the thread ends once its port is closed and its event loop empty
  if (job === 'close') {
    port.close()
    return
  }
  if (closedFlag && Atomics.load(closedFlag, 0) === 1) return // the pool is gone: nobody waits for it
  let reply: SignatureCheckReply = { id: job.id }
  try {
    const checks = {
      digests: new Uint8Array(job.digests),
      leafHashes: new Uint8Array(job.leafHashes),
      outcomes: new Uint8Array(job.outcomes),
    }
    job.readings.forEach((reading, j) => {
      checkReadingSignature(reading, digest, keccak, checks, job.indices[j] as number)
    })
  } catch (error) {
    reply = { id: job.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }
  }
  port.postMessage(reply)
})
port.postMessage({ id: -1 } satisfies SignatureCheckReply)
