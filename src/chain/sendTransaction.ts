import type { Chain, Hash, PublicClient, TransactionReceipt, Transport } from 'viem'
import { ChainError } from '../errors.ts'

/**
 * Awaits a sent transaction's receipt and fails loudly when it reverted. Use it for every write:
 * one transaction at a time, each mined before the next is sent.
 */
export async function sendTransaction(
  publicClient: PublicClient<Transport, Chain>,
  send: Promise<Hash>,
  what = 'transaction',
): Promise<TransactionReceipt> {
  const hash = await send
  const receipt = await publicClient.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') {
    throw new ChainError('TRANSACTION_REVERTED', `${what} reverted`, { details: { hash } })
  }
  return receipt
}
