/**
 * The pending-transaction journal on real anvil: a write recorded and then lost to a crash before
 * it was sent, or sent and then lost before its receipt was read, lands exactly once when the
 * process starts again; a recorded transaction whose nonce another one took is marked replaced, one
 * that reverted reverted, and either key sent again signs anew; a chain asking more than the fee
 * cap gets nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, type Hex, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChainClients, createChainClients } from '../../src/chain/createChainClients.ts'
import { anvilAccounts, startAnvil } from '../../src/chain/startAnvil.ts'
import { openTxJournal } from '../../src/chain/txJournal.ts'

let dir: string
let anvil: Awaited<ReturnType<typeof startAnvil>>
let sender: ChainClients
const to: Address = '0x000000000000000000000000000000000000dEaD'
/** A call with calldata, as a contract write has (an EOA takes it as a plain transfer). */
const call = (i: number) => ({ to, data: `0x${i.toString(16).padStart(8, '0')}` as Hex })

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-tx-journal-'))
  anvil = await startAnvil()
  sender = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[3] })
}, 60_000)
afterAll(async () => {
  await anvil?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const open = (options: Parameters<typeof openTxJournal>[2] = {}) =>
  openTxJournal(join(dir, 'journal.db'), sender as Parameters<typeof openTxJournal>[1], options)
const nonce = () =>
  sender.publicClient.getTransactionCount({
    address: sender.account?.address as Address,
    blockTag: 'pending',
  })

describe('the pending-transaction journal', () => {
  it('sends a write once, and once only when asked again under its key', async () => {
    const journal = open()
    const before = await nonce()
    const receipt = await journal.send('write:1', call(1))
    expect(receipt.status).toBe('success')
    const again = await journal.send('write:1', call(1))
    expect(again.transactionHash).toBe(receipt.transactionHash)
    expect(await nonce()).toBe(before + 1)
    expect(journal.entry('write:1')).toMatchObject({ status: 'mined', hash: receipt.transactionHash })
    journal.close()
  })

  it('after a crash between recording and sending, sends the recorded bytes on restart: exactly once', async () => {
    const before = await nonce()
    const crashed = open()
    const recorded = await crashed.record('write:2', call(2))
    crashed.close() // the process dies here: nothing was sent
    expect(await nonce()).toBe(before)
    const resent: string[] = []
    const restarted = open({ onResent: (e) => resent.push(e.key) })
    // a new write after the restart: the recorded one goes first, with its nonce
    const next = await restarted.send('write:3', call(3))
    expect(resent).toEqual(['write:2'])
    const first = await sender.publicClient.getTransactionReceipt({ hash: recorded.hash })
    expect(first.status).toBe('success')
    expect(restarted.entry('write:2')?.status).toBe('pending')
    expect((await restarted.send('write:2', call(2))).transactionHash).toBe(recorded.hash)
    expect(next.blockNumber).toBeGreaterThanOrEqual(first.blockNumber)
    expect(await nonce()).toBe(before + 2)
    restarted.close()
  })

  it('after a crash between sending and reading the receipt, finds it mined on restart and sends nothing', async () => {
    const before = await nonce()
    const crashed = open()
    const recorded = await crashed.record('write:4', call(4))
    await sender.publicClient.sendRawTransaction({ serializedTransaction: recorded.raw })
    crashed.close() // dies before it learnt of the receipt
    const resent: string[] = []
    const restarted = open({ onResent: (e) => resent.push(e.key) })
    const receipt = await restarted.send('write:4', call(4))
    expect(receipt.transactionHash).toBe(recorded.hash)
    expect(resent).toEqual([])
    expect(await nonce()).toBe(before + 1)
    restarted.close()
  })

  it('says so when another transaction took a recorded one’s nonce', async () => {
    const crashed = open()
    await crashed.record('write:5', call(5))
    crashed.close()
    // meanwhile the same key, outside the journal, spends that nonce
    const wallet = sender.walletClient as NonNullable<ChainClients['walletClient']>
    const other = await wallet.sendTransaction({ to, value: parseEther('0.001') })
    await sender.publicClient.waitForTransactionReceipt({ hash: other })
    const before = await nonce()
    const restarted = open()
    // the restart finds it replaced (it can never be mined) and goes on: the next write is not held up
    await restarted.resume()
    expect(restarted.entry('write:5')?.status).toBe('replaced')
    expect((await restarted.send('write:6', call(6))).status).toBe('success')
    // and sending its key again signs a new transaction, which lands once
    const resent = await restarted.send('write:5', call(5))
    expect(resent.status).toBe('success')
    expect(restarted.entry('write:5')).toMatchObject({ status: 'mined', hash: resent.transactionHash })
    expect(await restarted.send('write:5', call(5))).toMatchObject({
      transactionHash: resent.transactionHash,
    })
    expect(await nonce()).toBe(before + 2)
    restarted.close()
  })

  it('marks a write that reverted so, and signs a new one when its key is sent again', async () => {
    // a contract whose every call reverts (runtime code PUSH1 0 PUSH1 0 REVERT)
    const wallet = sender.walletClient as NonNullable<ChainClients['walletClient']>
    const deployed = await sender.publicClient.waitForTransactionReceipt({
      hash: await wallet.sendTransaction({ data: '0x6005600c60003960056000f360006000fd' }),
    })
    const reverter = deployed.contractAddress as Address
    const journal = open()
    const before = await nonce()
    const failing = { to: reverter, data: '0x01' as Hex, gas: 50_000n } // estimating would fail
    await expect(journal.send('write:8', failing)).rejects.toMatchObject({ code: 'TRANSACTION_REVERTED' })
    const first = journal.entry('write:8')
    expect(first?.status).toBe('reverted')
    await expect(journal.send('write:8', failing)).rejects.toMatchObject({ code: 'TRANSACTION_REVERTED' })
    expect(journal.entry('write:8')?.hash).not.toBe(first?.hash)
    expect(await nonce()).toBe(before + 2)
    // a key that is recorded and not failed cannot be recorded over
    await journal.send('write:9', call(9))
    await expect(journal.record('write:9', call(9))).rejects.toMatchObject({ code: 'TRANSACTION_RECORDED' })
    journal.close()
  })

  it('sends nothing when the chain asks more than the fee cap', async () => {
    const before = await nonce()
    const capped = open({ maxFeePerGas: 1n })
    await expect(capped.send('write:7', call(7))).rejects.toMatchObject({ code: 'FEE_CAP_EXCEEDED' })
    expect(capped.entry('write:7')).toBeUndefined()
    expect(await nonce()).toBe(before)
    capped.close()
  })
})
