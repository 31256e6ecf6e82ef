/**
 * `depin claim` on real anvil against a stand-in for the API's `GET /v1/rewards/:account` (the
 * chain is real; the stand-in answers what a lagging or racing API would): the claim names the
 * proof's epoch; when the root moved between fetch and send the command says so, fetches a fresh
 * proof and tries once more, and stops with CLAIM_REFUSED when the fresh one fails too.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { runClaim } from '../../src/cli/claim.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
import {
  joinValidators,
  makeReport,
  signReport,
  startTestNetwork,
  type TestNetwork,
  WAD,
} from '../helpers/testNetwork.ts'

type Tree = StandardMerkleTree<[Address, bigint]>

let net: TestNetwork
let validators: Awaited<ReturnType<typeof joinValidators>>
let owner: Address
let dataDir: string
let api: Server
let apiUrl: string
/** What the stand-in API answers, one epoch per request in turn (the last one repeated). */
let answers: { epoch: bigint; tree: Tree }[] = []
let requests = 0

beforeAll(async () => {
  net = await startTestNetwork()
  validators = await joinValidators(net, 3)
  owner = (await net.actor()).address
  dataDir = mkdtempSync(join(tmpdir(), 'depin-claim-'))
  writeDeployment(join(dataDir, 'deployment.json'), net.deployment)
  api = createServer((request, response) => {
    const answer = answers[Math.min(requests, answers.length - 1)]
    requests++
    if (!answer || request.url !== `/v1/rewards/${owner}`) {
      response.writeHead(404).end()
      return
    }
    const amount = amountOf(answer.tree)
    response.setHeader('content-type', 'application/json')
    response.end(
      JSON.stringify({
        account: owner,
        epoch: String(answer.epoch),
        rewardsRoot: answer.tree.root,
        cumulativeAmount: String(amount),
        claimed: '0',
        claimable: String(amount),
        proof: proofOf(answer.tree),
      }),
    )
  })
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve))
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => api?.close(resolve))
  await net?.stop()
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
})
revertAfterEachTest(() => net)

/** Settles `epoch` with the owner owed `amount` in total (and another account 1 token). */
async function settle(epoch: bigint, amount: bigint, total: bigint): Promise<Tree> {
  await net.closeEpoch(epoch)
  const leaves: [Address, bigint][] = [
    [owner, amount],
    [keccak256(toHex('someone else')).slice(0, 42) as Address, WAD],
  ]
  const tree = StandardMerkleTree.of(leaves, ['address', 'uint256'])
  const report = makeReport(epoch, tree.root as Hex, total)
  await net.send(
    net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
  )
  return tree
}

function amountOf(tree: Tree): bigint {
  for (const [, [account, amount]] of tree.entries()) if (account === owner) return amount
  throw new Error('the owner has no leaf')
}

function proofOf(tree: Tree): Hex[] {
  for (const [i, [account]] of tree.entries()) if (account === owner) return tree.getProof(i) as Hex[]
  throw new Error('the owner has no leaf')
}

/** Runs `depin claim --owner` against the stand-in API; returns the lines it printed. */
async function claim(): Promise<string[]> {
  requests = 0
  const lines: string[] = []
  await runClaim({
    owner,
    api: apiUrl,
    rpcUrl: net.anvil.rpcUrl,
    dataDir,
    print: (line) => lines.push(line),
  })
  return lines
}

const balance = () => net.contracts.depinToken.read.balanceOf([owner])

describe('depin claim', () => {
  it('claims against the epoch the API names', async () => {
    const tree = await settle(1n, 10n * WAD, 11n * WAD)
    answers = [{ epoch: 1n, tree }]
    const lines = await claim()
    expect(lines).toEqual([
      expect.stringMatching(/^claimed 10 [A-Z]+ for 0x.* \(cumulative 10, epoch 1\), tx 0x/),
    ])
    expect(await balance()).toBe(10n * WAD)
    expect(requests).toBe(1)
  })

  it('fetches a fresh proof once when a newer root settled since the fetch, and says so', async () => {
    const first = await settle(1n, 10n * WAD, 11n * WAD)
    const second = await settle(2n, 14n * WAD, 4n * WAD)
    answers = [
      { epoch: 1n, tree: first },
      { epoch: 2n, tree: second },
    ]
    const lines = await claim()
    expect(lines).toEqual([
      'the rewards root moved from epoch 1 to 2 since the proof was fetched: fetched a fresh proof, now against epoch 2',
      expect.stringMatching(/^claimed 14 [A-Z]+ for 0x.* \(cumulative 14, epoch 2\)/),
    ])
    expect(await balance()).toBe(14n * WAD)
  })

  it('retries once with a fresh proof when the claim reverts because the root moved', async () => {
    const settled = await settle(1n, 10n * WAD, 11n * WAD)
    // the API is ahead of the chain the command sends to: epoch 2's root is not on it yet
    const ahead = StandardMerkleTree.of<[Address, bigint]>([[owner, 12n * WAD]], ['address', 'uint256'])
    answers = [
      { epoch: 2n, tree: ahead },
      { epoch: 1n, tree: settled },
    ]
    const lines = await claim()
    expect(lines).toEqual([
      'the rewards root moved between fetch and send (the claim against epoch 2 reverted with DistributorNoRoot): fetched a fresh proof, now against epoch 1',
      expect.stringMatching(/^claimed 10 [A-Z]+ for 0x.* \(cumulative 10, epoch 1\)/),
    ])
    expect(await balance()).toBe(10n * WAD)
  })

  it('stops with CLAIM_REFUSED when the fresh proof is against a root that left the ring too', async () => {
    const expired = await settle(1n, 10n * WAD, 11n * WAD)
    const ring = await net.contracts.rewardDistributor.read.ROOT_RING_SIZE()
    await settle(1n + ring, 12n * WAD, WAD)
    answers = [{ epoch: 1n, tree: expired }]
    await expect(claim()).rejects.toMatchObject({
      code: 'CLAIM_REFUSED',
      message: 'the distributor refused the claim against epoch 1: DistributorRootExpired',
    })
    expect(requests).toBe(2)
    expect(await balance()).toBe(0n)
  })
})
