import { setTimeout as sleep } from 'node:timers/promises'
import type { Chain, Hex, PublicClient, Transport } from 'viem'
import type { Deployment } from '../chain/deployment.ts'
import { ChainError, ConfigError, DepinError } from '../errors.ts'
import type { Context } from '../protocol/context.ts'
import { createBatchWriter } from './createBatchWriter.ts'
import { createIndexerStore, type IndexerStore } from './indexerStore.ts'
import {
  type IndexerCursor,
  type IndexerDatabase,
  openIndexerDatabase,
  readCursor,
  readMeta,
  writeMeta,
} from './openIndexerDatabase.ts'
import { type BlockStamp, readProtocolEvents } from './readProtocolEvents.ts'
import { DEFAULT_FINALITY, findCommonAncestor, rollBackTo } from './rollBack.ts'

export type IndexerProgress = {
  /** The last block of the range just committed. */
  block: bigint
  /** Protocol events stored from that range. */
  events: number
}

export type IndexerReorg = {
  /** The cursor that was no longer on the chain. */
  from: IndexerCursor
  /** The common ancestor the database was rolled back to. */
  to: IndexerCursor
  /** Blocks rolled back (from.block − to.block). */
  depth: bigint
  /** Events dropped with them. */
  dropped: number
}

export type CreateIndexerOptions = {
  publicClient: PublicClient<Transport, Chain>
  /** The contracts followed, and the block indexing starts at. */
  deployment: Deployment
  /** SQLite file; created if missing. */
  dbPath: string
  /** Milliseconds between polls for new blocks once caught up (default 500). */
  pollIntervalMs?: number
  /** Most blocks per getLogs call (default 2000). */
  blockRange?: bigint
  /** Called after each range of blocks is committed. */
  onProgress?: (progress: IndexerProgress) => void
  /**
   * Index only blocks this many below the head (default 0: the head itself), so that shallower
   * reorgs never reach what was indexed; or follow the chain's `safe` or `finalized` block instead.
   */
  confirmations?: number
  blockTag?: 'safe' | 'finalized'
  /**
   * How deep below the cursor a reorg may reach and still be rolled back and replayed (default 64
   * blocks); a deeper one halts the indexer with INDEXER_REORG_TOO_DEEP, changing nothing.
   */
  finality?: number
  /** Called after a reorg was rolled back (before the blocks after the ancestor are replayed). */
  onReorg?: (reorg: IndexerReorg) => void
  /**
   * Called when a background poll fails. Failures a retry can help with (the RPC node is
   * unreachable) are retried at the next poll; others (INDEXER_REORG_TOO_DEEP) stop the polling, and
   * `waitForTime` rejects with them.
   */
  onError?: (error: unknown) => void
  /** The process's context: without `onError`, poll failures are reported through it (INDEXER_POLL_FAILED). */
  context?: Context
}

export type Indexer = {
  /** Catches up to the chain's head, then polls for new blocks in the background. */
  start(): Promise<void>
  /** Stops polling, waits for a running sync to commit, closes the database. */
  stop(): Promise<void>
  /**
   * Processes blocks up to the current head once, in ranges of `blockRange` blocks, each range
   * committed with the cursor in one transaction. A reorg is rolled back first (to the common
   * ancestor); one deeper than `finality` throws INDEXER_REORG_TOO_DEEP.
   * @returns the last processed block
   */
  syncOnce(): Promise<bigint>
  /**
   * Waits until the indexer has processed a block whose timestamp is >= `timestamp` (polls with a
   * deadline; rejects after timeoutMs). Syncs by itself when the indexer was not started.
   */
  waitForTime(timestamp: bigint, timeoutMs?: number): Promise<void>
  readonly store: IndexerStore
}

/**
 * Follows the protocol contracts' events into a SQLite file and resumes from the last processed
 * block after a restart.
 * @example
 * const indexer = createIndexer({ publicClient, deployment, dbPath: '.data/indexer.sqlite' })
 * await indexer.start()
 * indexer.store.getDevice(device)
 * await indexer.stop()
 */
export function createIndexer(options: CreateIndexerOptions): Indexer {
  const { publicClient, deployment, dbPath, onProgress, onError } = options
  const pollIntervalMs = options.pollIntervalMs ?? 500
  const blockRange = options.blockRange ?? 2000n
  if (blockRange < 1n) throw new ConfigError('INDEXER_INVALID_OPTIONS', 'blockRange must be at least 1')
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 0) {
    throw new ConfigError('INDEXER_INVALID_OPTIONS', 'pollIntervalMs must be a non-negative number')
  }
  if (publicClient.chain.id !== deployment.chainId) {
    throw new ConfigError(
      'INDEXER_WRONG_CHAIN',
      `the deployment is on chain ${deployment.chainId}, the client on chain ${publicClient.chain.id}`,
    )
  }
  const db = openIndexerDatabase(dbPath)
  try {
    bindDeployment(db, deployment, dbPath)
  } catch (error) {
    db.close()
    throw error
  }
  const confirmations = BigInt(options.confirmations ?? 0)
  const finality = BigInt(options.finality ?? Number(DEFAULT_FINALITY))
  if (confirmations < 0n || finality < 0n)
    throw new ConfigError('INDEXER_INVALID_OPTIONS', 'confirmations and finality must not be negative')
  /** Near the head, ranges of at most this many blocks: a kept hash is never far below a reorg. */
  const nearHeadStep = finality / 8n > 1n ? finality / 8n : 1n
  const store = createIndexerStore(db)
  const writeBatch = createBatchWriter(db, { finality })

  let running = false
  let stopping: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  /** A failure of the background polling that a retry cannot fix. */
  let failure: unknown
  /** Syncs run one at a time: each waits for the previous one. */
  let queue: Promise<unknown> = Promise.resolve()

  const stoppedError = () => new DepinError('INDEXER_STOPPED', 'the indexer was stopped')

  async function sync(): Promise<bigint> {
    const head = stamp(await publicClient.getBlock({ blockTag: 'latest' }))
    const target = await targetOf(head)
    let cursor = readCursor(db)
    if (cursor) cursor = await checkCursor(cursor, head)
    let last = cursor?.block ?? deployment.startBlock - 1n
    const nearHead = target.number - finality
    while (last < target.number && !stopping) {
      const fromBlock = last + 1n
      let toBlock = last + blockRange < target.number ? last + blockRange : target.number
      // within the finality window of the head, short ranges: each end's hash is kept
      if (toBlock > nearHead)
        toBlock =
          fromBlock <= nearHead
            ? nearHead
            : fromBlock + nearHeadStep - 1n < toBlock
              ? fromBlock + nearHeadStep - 1n
              : toBlock
      const blocks = new Map<bigint, BlockStamp>([
        [head.number, head],
        [target.number, target],
      ])
      const end = blocks.get(toBlock) ?? stamp(await publicClient.getBlock({ blockNumber: toBlock }))
      blocks.set(toBlock, end)
      const events = await readProtocolEvents({ publicClient, deployment, fromBlock, toBlock, blocks })
      writeBatch({ events, cursor: { block: end.number, hash: end.hash, timestamp: end.timestamp } })
      last = toBlock
      onProgress?.({ block: toBlock, events: events.length })
    }
    return last
  }

  /** The block indexing goes up to: the head less the confirmations, or the chain's safe/finalized block. */
  async function targetOf(head: BlockStamp): Promise<BlockStamp> {
    if (options.blockTag) return stamp(await publicClient.getBlock({ blockTag: options.blockTag }))
    if (confirmations === 0n) return head
    const number = head.number > confirmations ? head.number - confirmations : 0n
    return stamp(await publicClient.getBlock({ blockNumber: number }))
  }

  /** The chain's hash at a height, undefined above its head. */
  async function hashAt(block: bigint, head: BlockStamp): Promise<Hex | undefined> {
    if (block > head.number) return undefined
    if (block === head.number) return head.hash
    return stamp(await publicClient.getBlock({ blockNumber: block })).hash
  }

  /**
   * The stored cursor's block must still be the chain's block at that height; when it is not (a
   * reorg), the database is rolled back to the common ancestor (src/indexer/rollBack.ts), which
   * becomes the cursor. A reorg beyond the finality window halts: INDEXER_REORG_TOO_DEEP.
   */
  async function checkCursor(cursor: IndexerCursor, head: BlockStamp): Promise<IndexerCursor> {
    const onChain = await hashAt(cursor.block, head)
    if (onChain === cursor.hash) return cursor
    const ancestor = await findCommonAncestor(db, (block) => hashAt(block, head))
    if (!ancestor || cursor.block - ancestor.block > finality) {
      throw reorgError(
        onChain === undefined
          ? `the chain's head (block ${head.number}) is below the last processed block ${cursor.block}`
          : `block ${cursor.block} is ${onChain} on the chain, not the processed ${cursor.hash}`,
        cursor,
        finality,
        onChain,
      )
    }
    const dropped = rollBackTo(db, ancestor)
    options.onReorg?.({ from: cursor, to: ancestor, depth: cursor.block - ancestor.block, dropped })
    return ancestor
  }

  function syncOnce(): Promise<bigint> {
    if (stopping) return Promise.reject(stoppedError())
    const run = queue.then(sync)
    queue = run.catch(() => {})
    return run
  }

  function schedule(): void {
    if (running && !stopping) timer = setTimeout(poll, pollIntervalMs)
  }

  async function poll(): Promise<void> {
    timer = undefined
    try {
      await syncOnce()
    } catch (error) {
      if (stopping) return
      if (onError) onError(error)
      else options.context?.report('INDEXER_POLL_FAILED', error)
      if (!isRetryable(error)) {
        failure = error
        running = false
        return
      }
    }
    schedule()
  }

  return {
    store,
    syncOnce,
    async start() {
      if (stopping) throw stoppedError()
      if (running) return
      failure = undefined
      running = true
      try {
        await syncOnce()
      } catch (error) {
        running = false
        throw error
      }
      schedule()
    },
    stop() {
      stopping ??= (async () => {
        running = false
        if (timer) clearTimeout(timer)
        await queue
        store.close()
      })()
      return stopping
    },
    async waitForTime(timestamp, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      let lastError: unknown
      for (;;) {
        if (failure) throw failure
        if (stopping) throw stoppedError()
        if (!running) {
          try {
            await syncOnce()
          } catch (error) {
            if (stopping || !isRetryable(error)) throw error
            lastError = error
          }
          if (stopping) throw stoppedError()
        }
        const last = store.lastProcessed()
        if (last && last.timestamp >= timestamp) return
        const remaining = deadline - Date.now()
        if (remaining <= 0) {
          throw new DepinError(
            'INDEXER_WAIT_TIMEOUT',
            `no block with timestamp >= ${timestamp} was processed within ${timeoutMs} ms (last: ${last?.timestamp ?? 'none'})`,
            {
              details: { timestamp: String(timestamp), lastTimestamp: last?.timestamp.toString() },
              retryable: true,
              ...(lastError === undefined ? {} : { cause: lastError }),
            },
          )
        }
        await sleep(Math.min(pollIntervalMs, remaining))
      }
    },
  }
}

/** Records which deployment a database indexes; refuses a database made for another one. */
function bindDeployment(db: IndexerDatabase, deployment: Deployment, dbPath: string): void {
  const identity = JSON.stringify({
    chainId: deployment.chainId,
    startBlock: deployment.startBlock.toString(),
    contracts: deployment.contracts,
  })
  const stored = readMeta(db, 'deployment')
  if (stored === undefined) writeMeta(db, 'deployment', identity)
  else if (stored !== identity) {
    throw new ConfigError(
      'INDEXER_DEPLOYMENT_MISMATCH',
      `indexer database ${dbPath} holds another deployment's events; use a new file for this deployment`,
      { details: { dbPath, stored: JSON.parse(stored), given: JSON.parse(identity) } },
    )
  }
}

function stamp(block: { number: bigint | null; hash: Hex | null; timestamp: bigint }): BlockStamp {
  if (block.number === null || block.hash === null) {
    throw new ChainError(
      'INDEXER_PENDING_BLOCK',
      'the RPC node returned a pending block where a mined one was asked',
    )
  }
  return { number: block.number, hash: block.hash, timestamp: block.timestamp }
}

/** Unknown failures (RPC transport errors) may pass; a DepinError says whether they can. */
function isRetryable(error: unknown): boolean {
  return error instanceof DepinError ? error.retryable : true
}

function reorgError(
  message: string,
  cursor: IndexerCursor,
  finality: bigint,
  chainHash?: string,
): DepinError {
  return new DepinError(
    'INDEXER_REORG_TOO_DEEP',
    `${message}: the chain reorganized deeper than the indexer's finality (${finality} blocks), or onto blocks it never processed; stopping, nothing changed (index again from a new database, or raise finality)`,
    {
      details: {
        block: cursor.block.toString(),
        storedHash: cursor.hash,
        finality: finality.toString(),
        ...(chainHash === undefined ? {} : { chainHash }),
      },
    },
  )
}
