/**
 * A pending-transaction journal: a transaction is signed locally and its raw bytes recorded
 * (SQLite, synchronous FULL) under a key naming what it does (`report:42`) before it is sent. A
 * process that dies after sending, or between recording and sending, finds the record on restart
 * and sends the same bytes again (same nonce, same hash) or waits for their receipt: a write is
 * never lost and never submitted twice. Fees are EIP-1559, with the max fee capped (`maxFeePerGas`):
 * when the chain asks more, nothing is sent (FEE_CAP_EXCEEDED) and the caller tries again later.
 *
 * A key's record ends `mined` (its receipt says success), `reverted` (mined, failed) or `replaced`
 * (another transaction took its nonce: it can never be mined). A key whose record reverted or was
 * replaced may be sent again: a new transaction is signed and recorded in its place.
 */
import {
  type Account,
  type Address,
  type Chain,
  type Hex,
  keccak256,
  type PublicClient,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
  type Transport,
  type WalletClient,
} from 'viem'
import { ChainError } from '../errors.ts'
import { openSqlite } from '../protocol/sqlDatabase.ts'

export type JournaledCall = { to: Address; data: Hex; gas?: bigint }

export type JournalEntry = {
  key: string
  hash: Hex
  raw: Hex
  nonce: bigint
  status: 'pending' | 'mined' | 'reverted' | 'replaced'
}

/** A record that ended without its write taking effect: the key may be sent anew. */
const isFailed = (entry: JournalEntry) => entry.status === 'reverted' || entry.status === 'replaced'

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
  const db = openSqlite(path)
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
  // a key is recorded once, and again only in place of a record that reverted or was replaced
  const insert = db.prepare(
    `INSERT INTO tx_journal (key, hash, raw, nonce, status, recorded_at) VALUES (?, ?, ?, ?, 'pending', ?)
     ON CONFLICT (key) DO UPDATE SET hash = excluded.hash, raw = excluded.raw, nonce = excluded.nonce,
       status = 'pending', recorded_at = excluded.recorded_at
     WHERE tx_journal.status IN ('reverted', 'replaced')`,
  )
  const markStatus = db.prepare('UPDATE tx_journal SET status = ? WHERE key = ? AND hash = ?')
  const pendingRows = db.prepare(
    "SELECT key, hash, raw, nonce, status FROM tx_journal WHERE status = 'pending'",
  )

  const receiptOf = async (hash: Hex): Promise<TransactionReceipt | undefined> => {
    try {
      return await publicClient.getTransactionReceipt({ hash })
    } catch (error) {
      if (error instanceof TransactionReceiptNotFoundError) return undefined
      throw error
    }
  }
  const replaced = (entry: JournalEntry, cause?: unknown) => {
    markStatus.run('replaced', entry.key, entry.hash)
    return new ChainError(
      'TRANSACTION_REPLACED',
      `the recorded transaction ${entry.key} (${entry.hash}) lost its nonce ${entry.nonce} to another one`,
      { details: { hash: entry.hash }, cause },
    )
  }

  /** Sends recorded bytes (again); a node that already has them, or mined them, is fine. */
  const broadcast = async (entry: JournalEntry): Promise<void> => {
    try {
      await publicClient.sendRawTransaction({ serializedTransaction: entry.raw })
    } catch (error) {
      const message = String((error as Error).message ?? error).toLowerCase()
      if (/already known|known transaction|already imported/.test(message)) return
      if (/nonce too low|nonce has already been used/.test(message)) {
        // spent by this very transaction, once mined; else another one took its nonce. Replaced
        // only when a mined block holds the nonce and still no receipt of ours (a node whose
        // receipts lag its pool must not make us sign the write again)
        if (await receiptOf(entry.hash)) return
        const mined = BigInt(
          await publicClient.getTransactionCount({ address: account.address, blockTag: 'latest' }),
        )
        if (mined > entry.nonce && !(await receiptOf(entry.hash))) throw replaced(entry, error)
      }
      throw error
    }
  }

  /**
   * Waits for a recorded transaction's receipt and marks how it ended: a revert is a ChainError
   * TRANSACTION_REVERTED, another transaction mined with its nonce TRANSACTION_REPLACED.
   */
  const settle = async (entry: JournalEntry, what: string): Promise<TransactionReceipt> => {
    // viem answers with the receipt of a transaction that replaced ours (same sender and nonce)
    const receipt = await publicClient.waitForTransactionReceipt({ hash: entry.hash })
    if (receipt.transactionHash !== entry.hash) throw replaced(entry)
    if (receipt.status !== 'success') {
      markStatus.run('reverted', entry.key, entry.hash)
      throw new ChainError('TRANSACTION_REVERTED', `${what} reverted`, { details: { hash: entry.hash } })
    }
    markStatus.run('mined', entry.key, entry.hash)
    return receipt
  }

  /** Signs `call` and records it under `key`, without sending it. */
  async function record(key: string, call: JournaledCall): Promise<JournalEntry> {
    const request = await walletClient.prepareTransactionRequest({
      account,
      chain: walletClient.chain,
      to: call.to,
      data: call.data,
      // a cap is a max fee per gas: EIP-1559; without one, viem takes what the chain supports
      ...(options.maxFeePerGas !== undefined ? { type: 'eip1559' as const } : {}),
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
    if (insert.run(key, entry.hash, raw, entry.nonce.toString(), Date.now()).changes === 0)
      throw new ChainError(
        'TRANSACTION_RECORDED',
        `${key} is recorded already: send it, do not record it again`,
        {
          details: { key },
        },
      )
    return entry
  }

  /**
   * Sends every recorded transaction not known mined again, once per journal, before anything new
   * (a new one must not take a nonce one of them holds). One that lost its nonce is marked so and
   * the others go on; anything else (the node down) stops it, to be tried again.
   */
  async function resume(): Promise<Set<string>> {
    const handled = new Set<string>()
    for (const entry of (pendingRows.all() as Row[]).map(toEntry)) {
      if (!(await receiptOf(entry.hash))) {
        options.onResent?.(entry)
        try {
          await broadcast(entry)
        } catch (error) {
          if ((error as { code?: string }).code !== 'TRANSACTION_REPLACED') throw error
          continue
        }
      }
      handled.add(entry.key)
    }
    return handled
  }
  let resumed: Promise<Set<string>> | undefined

  /** resume(), once per journal; tried again at the next call after a failure. */
  const resumeOnce = (): Promise<Set<string>> => {
    resumed ??= resume().catch((error) => {
      resumed = undefined
      throw error
    })
    return resumed
  }

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
     * or their receipt is read. Reverts are ChainError TRANSACTION_REVERTED; after one (or
     * TRANSACTION_REPLACED), sending `key` again signs a new transaction.
     */
    async send(
      key: string,
      call: JournaledCall,
      what = key,
      onSent?: () => unknown,
    ): Promise<TransactionReceipt> {
      const handled = await resumeOnce()
      const row = select.get(key) as Row | undefined
      if (row && !isFailed(toEntry(row))) {
        const entry = toEntry(row)
        // resumed just now (sent again, or found mined), or mined before: its receipt is all that is left
        if (entry.status === 'mined' || handled.has(key) || (await receiptOf(entry.hash)))
          return settle(entry, what)
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
    resume: async (): Promise<void> => {
      await resumeOnce()
    },
    close: () => db.close(),
  }
}
