/**
 * Epoch randomness on a real chain: recomputed here the slow way (every block looked at, the
 * report's digest from the EpochManager's own hashReport) it gives what the validators use.
 */
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { encodeAbiParameters, type Hex, keccak256, zeroHash } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { epochRandomness, RANDOMNESS_DOMAIN, reportsFromLogs } from '../../src/chain/epochRandomness.ts'
import { epochManagerAbi } from '../../src/chain/generated/contracts.ts'
import {
  joinValidators,
  makeReport,
  signReport,
  sortAddresses,
  startTestNetwork,
  type TestNetwork,
  WAD,
} from '../helpers/testNetwork.ts'

let net: TestNetwork
let rulesHash: Hex
const root = StandardMerkleTree.of(
  [['0x1111111111111111111111111111111111111111', 50n * WAD]],
  ['address', 'uint256'],
).root as Hex

beforeAll(async () => {
  net = await startTestNetwork()
  const validators = sortAddresses(await joinValidators(net, 4))
  rulesHash = await net.contracts.epochManager.read.rulesHash()
  // epoch 1 settles during epoch 2; epoch 3 then starts
  await net.closeEpoch(1n)
  const report = makeReport(1n, root, 1n)
  await net.send(
    net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
  )
  await net.closeEpoch(2n)
  await net.closeEpoch(3n)
}, 60_000)
afterAll(async () => net?.stop())

/** The randomness of `epoch`, recomputed from raw chain data without the module's search. */
async function recompute(epoch: bigint): Promise<Hex> {
  const { publicClient } = net.admin
  const start = net.deployment.genesisTime + epoch * net.deployment.epochLength
  // (not getBlockNumber: viem caches it for seconds, and the chain moved on since)
  const latest = (await publicClient.getBlock({ blockTag: 'latest' })).number
  let last = await publicClient.getBlock({ blockNumber: 0n })
  for (let n = 1n; n <= latest; n++) {
    const block = await publicClient.getBlock({ blockNumber: n })
    if (block.timestamp < start) last = block
  }
  const logs = await publicClient.getContractEvents({
    address: net.deployment.contracts.epochManager,
    abi: epochManagerAbi,
    eventName: 'ReportAccepted',
    fromBlock: 0n,
    toBlock: last.number,
  })
  const args = logs.at(-1)?.args
  const digest = args
    ? await net.contracts.epochManager.read.hashReport([
        {
          epoch: args.epoch as bigint,
          rulesHash,
          readingsRoot: args.readingsRoot as Hex,
          rewardsRoot: args.rewardsRoot as Hex,
          receiptsRoot: args.receiptsRoot as Hex,
          total: args.total as bigint,
          accepted: args.accepted as number,
        },
      ])
    : zeroHash
  return keccak256(
    encodeAbiParameters(
      [
        { type: 'string' },
        { type: 'uint256' },
        { type: 'address' },
        { type: 'uint64' },
        { type: 'bytes32' },
        { type: 'bytes32' },
      ],
      [
        RANDOMNESS_DOMAIN,
        BigInt(net.chainId),
        net.deployment.contracts.epochManager,
        epoch,
        digest,
        last.hash as Hex,
      ],
    ),
  )
}

const randomnessOf = (epoch: bigint) =>
  epochRandomness({
    publicClient: net.admin.publicClient,
    deployment: net.deployment,
    rulesHash,
    epoch,
    lastReportBefore: reportsFromLogs(net.admin.publicClient, net.deployment),
  })

describe('epoch randomness', () => {
  it('equals a recomputation from the chain alone, and mixes in the last report settled before the epoch', async () => {
    for (const epoch of [0n, 1n, 2n, 3n]) {
      const randomness = await randomnessOf(epoch)
      expect(randomness?.value, `epoch ${epoch}`).toBe(await recompute(epoch))
    }
    // epoch 3 started after epoch 1's report: that report is part of its randomness
    const third = await randomnessOf(3n)
    expect(third?.previousReport?.epoch).toBe(1n)
    expect((await randomnessOf(1n))?.previousReport).toBeNull()
    const values = await Promise.all([0n, 1n, 2n, 3n].map(async (e) => (await randomnessOf(e))?.value))
    expect(new Set(values).size).toBe(4)
  })

  it('is unknown before the epoch has started on-chain', async () => {
    expect(await randomnessOf(50n)).toBeUndefined()
  })
})
