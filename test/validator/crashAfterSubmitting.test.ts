/**
 * A leader SIGKILLed between sending its report transaction and reading its receipt (the step
 * `submissionSent`, after the pending-transaction journal recorded and sent it): restarted, it
 * sends nothing more for that epoch, which settles with that one transaction. Three validator
 * processes on real anvil, loopback.
 */
import { decodeFunctionData, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { epochManagerAbi } from '../../src/chain/generated/contracts.ts'
import { type ProcessNetwork, startProcessNetwork, type ValidatorProcess } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 3 })
}, 120_000)
afterAll(async () => net?.stop())

const exited = (p: ValidatorProcess) =>
  new Promise<void>((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve()
    p.child.once('exit', () => resolve())
  })

describe('a leader killed after sending its report', () => {
  it('lands the report exactly once', async () => {
    await waitFor('a first settled epoch', () => net.indexer.store.epochs(1)[0])
    const victim = 1
    const p0 = net.processes[victim] as ValidatorProcess
    const address = p0.address.toLowerCase()
    const fromBlock = await net.admin.publicClient.getBlockNumber()
    p0.child.kill('SIGKILL')
    await exited(p0)
    await net.restart(victim, ['--crash-at', 'submissionSent'])
    const crashing = net.processes[victim] as ValidatorProcess
    // it leads every third epoch or so: it kills itself the first time it has sent a report
    await waitFor(
      'the leader to kill itself after sending',
      async () => {
        await Promise.race([exited(crashing), new Promise((r) => setTimeout(r, 1_000))])
        return crashing.child.signalCode !== null || undefined
      },
      120_000,
    )
    const line = crashing.output
      .join('')
      .split('\n')
      .find((l) => l.includes('"crashing"')) as string
    const epoch = BigInt((JSON.parse(line) as { epoch: string }).epoch)
    await net.restart(victim, [])

    const settled = await waitFor(`epoch ${epoch} to settle`, () => net.indexer.store.getEpoch(epoch), 60_000)
    // two more epochs settled after the restart: time for a duplicate to have gone out
    await waitFor(
      'two later epochs to settle',
      () => {
        const last = net.indexer.store.epochs(1)[0]?.epoch
        return last !== undefined && last >= epoch + 2n ? last : undefined
      },
      90_000,
    )
    const submissions: Hex[] = []
    const toBlock = await net.admin.publicClient.getBlockNumber()
    for (let b = fromBlock; b <= toBlock; b++) {
      const block = await net.admin.publicClient.getBlock({ blockNumber: b, includeTransactions: true })
      for (const tx of block.transactions) {
        if (tx.from.toLowerCase() !== address) continue
        if (tx.to?.toLowerCase() !== net.deployment.contracts.epochManager.toLowerCase()) continue
        const call = decodeFunctionData({ abi: epochManagerAbi, data: tx.input })
        if (call.functionName === 'submitReport' && (call.args[0] as { epoch: bigint }).epoch === epoch)
          submissions.push(tx.hash)
      }
    }
    expect(submissions).toEqual([settled.txHash])
  }, 360_000)
})
