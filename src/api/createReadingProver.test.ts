import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { bytesToHex, type Hex, keccak256, toBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { createReadingHasher } from '../readings/createReadingHasher.ts'
import { signReading } from '../readings/signReading.ts'
import { createValidatorStore, type ValidatorStore } from '../validator/validatorStore.ts'
import { createReadingProver } from './createReadingProver.ts'

const chainId = 31337
const deviceRegistry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
let dir: string
let store: ValidatorStore
afterEach(() => {
  store?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A validator store (real SQLite) holding epoch 5 with three accepted readings; returns their tree's root. */
async function storeWithEpoch5() {
  dir = mkdtempSync(join(tmpdir(), 'depin-prover-'))
  store = createValidatorStore(join(dir, 'validator.db'))
  const account = privateKeyToAccount(generatePrivateKey())
  const hash = await createReadingHasher(chainId, deviceRegistry)
  const readings = await Promise.all(
    [1n, 2n, 3n].map((seq) =>
      signReading({ account, chainId, deviceRegistry, seq, time: 1_000n + seq, values: [2150n + seq] }),
    ),
  )
  const accepted = readings.map((reading) => ({ reading, digest: bytesToHex(hash(reading)) }))
  const report = {
    epoch: 5n,
    rulesHash: '0x' as Hex,
    readingsRoot: '0x' as Hex,
    rewardsRoot: '0x' as Hex,
    receiptsRoot: '0x' as Hex,
    total: 0n,
    accepted: 3,
  }
  store.saveResult(
    {
      epoch: 5n,
      report,
      digest: '0x',
      signature: '0x',
      cumulative: new Map(),
      rejectedByReason: {},
      batchHashes: [],
    },
    readings.map((r) => ({ device: r.device.toLowerCase(), seq: r.seq, status: 'accepted', reason: null })),
    accepted,
  )
  const root = StandardMerkleTree.of(
    accepted.map((a) => [a.digest]),
    ['bytes32'],
  ).root as Hex
  return { root, accepted }
}

describe('createReadingProver', () => {
  it('proves stored readings against the settled root, in the format OpenZeppelin verifies', async () => {
    const { root, accepted } = await storeWithEpoch5()
    const prover = createReadingProver({
      store,
      indexer: { getEpoch: (e) => (e === 5n ? ({ readingsRoot: root } as never) : undefined) },
      keccak: await loadKeccak256(),
    })
    const found = store.acceptedReadings({ from: 0n, to: 2_000n, limit: 10 })
    expect(found.map((f) => f.reading.seq)).toEqual([1n, 2n, 3n])
    const { readings, unverifiable } = prover.prove(found)
    expect(unverifiable).toEqual([])
    expect(readings.map((r) => r.digest)).toEqual(accepted.map((a) => a.digest))
    for (const r of readings) {
      expect(r.readingsRoot).toBe(root)
      expect(StandardMerkleTree.verify(root, ['bytes32'], [r.digest], r.proof)).toBe(true)
    }
  })

  it('serves nothing for an epoch whose settled root its store does not give, or that did not settle', async () => {
    await storeWithEpoch5()
    const keccak = await loadKeccak256()
    const found = store.acceptedReadings({ from: 0n, to: 2_000n, limit: 10 })
    const otherRoot = keccak256(toBytes('another root'))
    const disagreeing = createReadingProver({
      store,
      indexer: { getEpoch: () => ({ readingsRoot: otherRoot }) as never },
      keccak,
    })
    expect(disagreeing.prove(found)).toEqual({ readings: [], unverifiable: ['5'] })
    const unsettled = createReadingProver({ store, indexer: { getEpoch: () => undefined }, keccak })
    expect(unsettled.prove(found)).toEqual({ readings: [], unverifiable: ['5'] })
  })
})
