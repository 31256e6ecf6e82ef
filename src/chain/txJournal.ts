/**
 * A pending-transaction journal: a transaction is signed locally and its raw bytes recorded
 * (SQLite, synchronous FULL) under a key naming what it does (`report:42`) before it is sent. A
 * process that dies after sending, or between recording and sending, finds the record on restart
 * and sends the same bytes again (same nonce, same hash) or waits for their receipt: a write is
 * never lost and never submitted twice. Fees are EIP-1559, with the max fee capped (`maxFeePerGas`):
 * when the chain asks more, nothing is sent (FEE_CAP_EXCEEDED) and the caller tries again later.
 */
import Database from 'better-sqlite3'
import {
  type Account,
  type Address,
  type Chain,
  type Hex,
  keccak256,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem'
import { ChainError } from '../errors.ts'

export type JournaledCall = { to: Address; data: Hex; gas?: bigint }

export type JournalEntry = {
  key: string
  hash: Hex
  raw: Hex
  nonce: bigint
  status: 'pending' | 'mined' | 'replaced'
}

export type TxJournalOptions = {
  /** The highest max fee per gas this process pays, wei (default: none). */
  maxFeePerGas?: bigint
  /** Called when a recorded transaction is sent again after a restart (for the log). */
  onResent?: (entry: JournalEntry) => void
}

export type TxJournal = ReturnType<typeof openTxJournal>

/** Opens (creating) the journal's table in a SQLite file (it may be the role's own store). */
export function openTxJournal(
  path: string,
  clients: {
    publicClient: PublicClient<Transport, Chain>
    walletClient: WalletClient<Transport, Chain, Account>
  },
  options: TxJournalOptions = {},
) {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`CREATE TABLE IF NOT EXISTS tx_journal (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    raw TEXT NOT NULL,
    nonce TEXT NOT NULL,
    status TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
  )`)
  const { publicClient, walletClient } = clients
  const account = walletClient.account
  type Row = { key: string; hash: Hex; raw: Hex; nonce: string; status: JournalEntry['status'] }
  const toEntry = (row: Row): JournalEntry => ({ ...row, nonce: BigInt(row.nonce) })
  const select = db.prepare('SELECT key, hash, raw, nonce, status FROM tx_journal WHERE key = ?')
  const insert = db.prepare(
    "INSERT INTO tx_journal (key, hash, raw, nonce, status, recorded_at) VALUES (?, ?, ?, ?, 'pending', ?)",
  )
  const markMined = db.prepare("UPDATE tx_journal SET status = 'mined' WHERE key = ?")
  const pendingRows = db.prepare(
    "SELECT key, hash, raw, nonce, status FROM tx_journal WHERE status = 'pending'",
  )

  const receiptOf = async (hash: Hex): Promise<TransactionReceipt | undefined> => {
    try {
      return await publicClient.getTransactionReceipt({ hash })
    } catch (error) {
      if ((error as { name?: string }).name === 'TransactionReceiptNotFoundError') return undefined
      throw error
    }
  }

  const markReplaced = db.prepare("UPDATE tx_journal SET status = 'replaced' WHERE key = ?")
  /** Sends recorded bytes (again); a node that already has them, or mined them, is fine. */
  const broadcast = async (entry: JournalEntry): Promise<void> => {
    try {
      await publicClient.sendRawTransaction({ serializedTransaction: entry.raw })
    } catch (error) {
      const message = String((error as Error).message ?? error).toLowerCase()
      if (/already known|known transaction|already imported/.test(message)) return
      if (/nonce too low|nonce has already been used/.test(message)) {
        // spent by this very transaction, once mined; else another one took its nonce
        if (await receiptOf(entry.hash)) return
        markReplaced.run(entry.key)
        throw new ChainError(
          'TRANSACTION_REPLACED',
          `the recorded transaction ${entry.key} (${entry.hash}) lost its nonce ${entry.nonce} to another one`,
          { details: { hash: entry.hash }, cause: error },
        )
      }
      throw error
    }
  }

  /** Waits for a recorded transaction's receipt and marks it mined; a revert is a ChainError. */
  const settle = async (entry: JournalEntry, what: string): Promise<TransactionReceipt> => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash: entry.hash })
    markMined.run(entry.key)
    if (receipt.status !== 'success')
      throw new ChainError('TRANSACTION_REVERTED', `${what} reverted`, { details: { hash: entry.hash } })
    return receipt
  }

  /** Signs `call` and records it under `key`, without sending it. */
  async function record(key: string, call: JournaledCall): Promise<JournalEntry> {
    const request = await walletClient.prepareTransactionRequest({
      account,
      chain: walletClient.chain,
      to: call.to,
      data: call.data,
      type: 'eip1559',
      ...(call.gas !== undefined ? { gas: call.gas } : {}),
    })
    const cap = options.maxFeePerGas
    if (cap !== undefined && (request.maxFeePerGas ?? 0n) > cap) {
      const block = await publicClient.getBlock()
      const baseFee = block.baseFeePerGas ?? 0n
      if (baseFee + (request.maxPriorityFeePerGas ?? 0n) > cap)
        throw new ChainError(
          'FEE_CAP_EXCEEDED',
          `the chain asks ${baseFee} wei of base fee per gas, above the cap of ${cap}: nothing sent`,
          { details: { baseFee: baseFee.toString(), cap: cap.toString() } },
        )
      request.maxFeePerGas = cap
    }
    const raw = await walletClient.signTransaction(
      request as Parameters<typeof walletClient.signTransaction>[0],
    )
    const entry: JournalEntry = {
      key,
      hash: keccak256(raw),
      raw,
      nonce: BigInt(request.nonce as number),
      status: 'pending',
    }
    insert.run(key, entry.hash, raw, entry.nonce.toString(), Date.now())
    return entry
  }

  /** Sends every recorded transaction not known mined again, once per journal, before anything new. */
  async function resume(): Promise<JournalEntry[]> {
    const pending = (pendingRows.all() as Row[]).map(toEntry)
    for (const entry of pending) {
      if (await receiptOf(entry.hash)) {
        markMined.run(entry.key)
        continue
      }
      options.onResent?.(entry)
      await broadcast(entry)
    }
    return pending
  }
  let resumed: Promise<JournalEntry[]> | undefined

  return {
    /** What is recorded under `key`, if anything. */
    entry: (key: string): JournalEntry | undefined => {
      const row = select.get(key) as Row | undefined
      return row && toEntry(row)
    },
    record,
    /**
     * Sends `call` once under `key` and waits for its receipt: the first time it is signed,
     * recorded, then sent; when `key` is already recorded (a restart) the same bytes are sent again
     * or their receipt is read. Reverts are ChainError TRANSACTION_REVERTED.
     */
    async send(
      key: string,
      call: JournaledCall,
      what = key,
      onSent?: () => unknown,
    ): Promise<TransactionReceipt> {
      // earlier recorded transactions first: a new one must not take a nonce one of them holds
      resumed ??= resume()
      try {
        await resumed
      } catch (error) {
        resumed = undefined
        // one that lost its nonce is marked so and left: anything else (the node down) stops here
        if ((error as { code?: string }).code !== 'TRANSACTION_REPLACED') throw error
      }
      const row = select.get(key) as Row | undefined
      if (row) {
        const entry = toEntry(row)
        if (entry.status === 'replaced')
          throw new ChainError('TRANSACTION_REPLACED', `the recorded transaction ${key} lost its nonce`, {
            details: { hash: entry.hash },
          })
        const mined = await receiptOf(entry.hash)
        if (mined) return settle(entry, what)
        options.onResent?.(entry)
        await broadcast(entry)
        return settle(entry, what)
      }
      const entry = await record(key, call)
      await broadcast(entry)
      await onSent?.()
      return settle(entry, what)
    },
    /** Sends every recorded transaction not known mined again (also done before the first send). */
    resume: () => {
      resumed ??= resume()
      return resumed
    },
    close: () => db.close(),
  }
}
