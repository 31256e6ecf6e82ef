import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import {
  agreedBatches,
  announcersAmong,
  type BatchSetAnnouncement,
  faultTolerance,
  signBatchSet,
  verifyBatchSet,
} from './batchSets.ts'

const chainId = 31337
const epochManager = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const batch = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex
const accounts = Array.from({ length: 7 }, () => privateKeyToAccount(generatePrivateKey()))
const announce = (signer: number, batches: number[], epoch = 5n) =>
  signBatchSet({
    account: accounts[signer] as (typeof accounts)[number],
    chainId,
    epochManager,
    epoch,
    batches: batches.map(batch),
  })

describe('batch sets', () => {
  it('tolerates f < n/3', () => {
    expect([1, 2, 3, 4, 6, 7, 10, 31].map(faultTolerance)).toEqual([0, 0, 0, 1, 1, 2, 3, 10])
  })

  it('counts a batch announced by f + 1 active validators, and only active ones', async () => {
    const active = accounts.slice(0, 4).map((a) => a.address) // n = 4: f = 1, two announcers needed
    const sets = [
      await announce(0, [1, 2]),
      await announce(1, [1]),
      await announce(2, [1, 3]),
      await announce(2, [4]), // a second announcement by one validator counts once per batch
      await announce(6, [2, 3]), // not active: ignored
    ]
    expect(agreedBatches(sets, active)).toEqual([batch(1)])
    expect([...announcersAmong(sets, active)].sort()).toEqual(
      active
        .slice(0, 3)
        .map((a) => a.toLowerCase())
        .sort(),
    )
    // with n = 3 (f = 0) one announcer is enough; the answer does not depend on order
    const three = active.slice(0, 3)
    const expected = [1, 2, 3, 4].map(batch)
    expect(agreedBatches(sets, three)).toEqual(expected)
    expect(agreedBatches([...sets].reverse(), three)).toEqual(expected)
    // two colluding announcers among n = 7 (f = 2) cannot make a batch count
    const seven = accounts.map((a) => a.address)
    expect(agreedBatches([await announce(5, [9]), await announce(6, [9])], seven)).toEqual([])
    expect(
      agreedBatches([await announce(4, [9]), await announce(5, [9]), await announce(6, [9])], seven),
    ).toEqual([batch(9)])
  })

  it('signs canonically and refuses forged, malleated or altered announcements', async () => {
    const signed = await announce(0, [3, 1, 3])
    expect(signed.batches).toEqual([batch(1), batch(3)])
    expect(await verifyBatchSet(chainId, epochManager, signed)).toEqual(signed)

    const refused = async (announcement: BatchSetAnnouncement) => {
      await expect(verifyBatchSet(chainId, epochManager, announcement)).rejects.toMatchObject({
        code: 'BATCH_SET_INVALID',
      })
    }
    await refused({ ...signed, batches: [batch(1)] }) // altered list
    await refused({ ...signed, epoch: 6n }) // another epoch
    await refused({ ...signed, signer: accounts[1]?.address as Hex }) // claims another signer
    await refused({ ...signed, batches: [batch(1), batch(1)] })
    const v = signed.signature.slice(130) === '1b' ? '1c' : '1b' // the other recovery id
    await refused({ ...signed, signature: `${signed.signature.slice(0, 130)}${v}` as Hex })
    await refused({ ...signed, signature: `${signed.signature.slice(0, 130)}1d` as Hex })
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
    const s = BigInt(`0x${signed.signature.slice(66, 130)}`)
    await refused({
      ...signed,
      signature: `${signed.signature.slice(0, 66)}${(N - s).toString(16).padStart(64, '0')}${v}` as Hex,
    })
    // in another network's domain the same signature is someone else's
    await expect(
      verifyBatchSet(chainId, '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512', signed),
    ).rejects.toMatchObject({ code: 'BATCH_SET_INVALID' })
  })
})
