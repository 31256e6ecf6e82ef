/**
 * Worker thread of openProviderStore: the provider database's only writer. Writes that arrive
 * while a commit is on its way are committed together in the next transaction (group commit: one
 * fsync for the answers of many consumers), each with its own outcome; one that throws leaves the
 * others recorded, unless SQLite rolled the transaction back itself (a full disk, an I/O error),
 * then the batch fails as one. Each write is answered only after its commit. On 'close' it
 * commits what it holds and ends.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { loadKeccak256 } from '../crypto/keccak.ts'
import {
  type AnswerRecorded,
  createProviderWrites,
  openProviderDatabase,
  type WriterData,
  type WriterRequest,
  type WriterResponse,
} from './providerStore.ts'

const port = parentPort
if (port === null) throw new Error('providerStoreWorker runs only as a worker thread')
const { path } = workerData as WriterData

const db = openProviderDatabase(path)
const writes = createProviderWrites(db, await loadKeccak256())

type Outcome = { ok: true; result: AnswerRecorded | boolean } | { ok: false; error: unknown }

const commit = db.transaction((requests: WriterRequest[]): Outcome[] =>
  requests.map((request) => {
    try {
      const result =
        request.type === 'answer' ? writes.recordAnswer(request.write) : writes.recordVoucher(request.voucher)
      return { ok: true, result }
    } catch (error) {
      if (!db.inTransaction) throw error
      return { ok: false, error }
    }
  }),
)

const errorOf = (error: unknown) =>
  error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: 'Error', message: String(error) }

let queued: WriterRequest[] = []
let closing = false

function flush(): void {
  const requests = queued
  queued = []
  let outcomes: Outcome[]
  try {
    outcomes = commit.immediate(requests)
  } catch (error) {
    outcomes = requests.map(() => ({ ok: false, error }))
  }
  for (const [i, outcome] of outcomes.entries()) {
    const { id } = requests[i] as WriterRequest
    const response: WriterResponse = outcome.ok
      ? { id, ok: true, result: outcome.result }
      : { id, ok: false, error: errorOf(outcome.error) }
    ;(port as NonNullable<typeof port>).postMessage(response)
  }
  if (closing) close()
}

function close(): void {
  if (queued.length > 0) return
  port?.close()
  db.close()
}

port.on('message', (message: WriterRequest | 'close') => {
  if (message === 'close') {
    closing = true
    if (queued.length === 0) close()
    return
  }
  queued.push(message)
  if (queued.length === 1) setImmediate(flush)
})
