/**
 * Worker thread of createDigestSignerPool: signs 32-byte digests with libsecp256k1 (the
 * `secp256k1` package's native addon), each with the key its job names, into 65-byte
 * signatures r ‖ s ‖ v (v = 27 + recovery id; libsecp256k1 signs with RFC 6979 nonces and low s,
 * as viem does: the same signature, bit for bit).
 */
import { createRequire } from 'node:module'
import { parentPort, workerData } from 'node:worker_threads'

type Secp256k1Native = {
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
}
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1Native

export type DigestSignerWorkerData = {
  /** The private keys, 32 bytes each, concatenated: key i at [32 i, 32 i + 32). */
  keys: Uint8Array
}
/** Digests (32 bytes each) and, for each, the index of the key that signs it. */
export type DigestSignJob = { id: number; digests: Uint8Array; keyIndices: Uint32Array }
/** The job's signatures (65 bytes each, in order), or why it failed; id −1 once loaded. */
export type DigestSignReply = { id: number; signatures?: Uint8Array; error?: string }

const port = parentPort
if (port === null) throw new Error('digestSignerWorker runs only as a worker thread')
const { keys } = workerData as DigestSignerWorkerData

port.on('message', (job: DigestSignJob | 'close') => {
  if (job === 'close') {
    port.close()
    return
  }
  try {
    const count = job.keyIndices.length
    const signatures = new Uint8Array(65 * count)
    for (let i = 0; i < count; i++) {
      const k = job.keyIndices[i] as number
      if (32 * k + 32 > keys.length) throw new RangeError(`no key ${k}`)
      const { signature, recid } = secp256k1.ecdsaSign(
        job.digests.subarray(32 * i, 32 * i + 32),
        keys.subarray(32 * k, 32 * k + 32),
      )
      signatures.set(signature, 65 * i)
      signatures[65 * i + 64] = 27 + recid
    }
    port.postMessage({ id: job.id, signatures } satisfies DigestSignReply, [signatures.buffer])
  } catch (error) {
    port.postMessage({
      id: job.id,
      error: error instanceof Error ? error.message : String(error),
    } satisfies DigestSignReply)
  }
})
port.postMessage({ id: -1 } satisfies DigestSignReply)
