/**
 * Worker thread of createSignatureCheckPool: checks jobs of packed records (packedRecords.ts) with
 * its own hasher and keccak, writing digests, leaf hashes and outcomes straight into the pool's
 * shared buffers, at each record's index.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { Address } from 'viem'
import { loadKeccak256 } from '../../crypto/keccak.ts'
import { createRecordWordsHasher } from '../../readings/createReadingHasher.ts'
import type { RecordKind } from '../../readings/recordKinds.ts'
import { checkPackedRecord, packedCount } from './packedRecords.ts'

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
  /** The records, packRecords' buffer (moved to the worker with the job). */
  packed: ArrayBuffer
  /** Where each record's results go in the shared buffers. */
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
const hash = createRecordWordsHasher(keccak, chainId, deviceRegistry, kinds)

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
    const packed = new Uint8Array(job.packed)
    const view = new DataView(job.packed)
    const count = packedCount(job.packed)
    for (let j = 0; j < count; j++)
      checkPackedRecord(packed, view, j, hash, keccak, checks, job.indices[j] as number)
  } catch (error) {
    reply = { id: job.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }
  }
  port.postMessage(reply)
})
port.postMessage({ id: -1 } satisfies SignatureCheckReply)
