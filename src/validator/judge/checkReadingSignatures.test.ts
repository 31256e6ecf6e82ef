import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { bytesToHex, hexToSignature, signatureToHex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import type { SignedReading } from '../../readings/reading.ts'
import { checkReadingSignatures, SIGNATURE_OUTCOMES } from './checkReadingSignatures.ts'
import { type JudgeHashing, loadJudgeHashing, sign, station, TYPICAL } from './testFleet.ts'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
let hashing: JudgeHashing
beforeAll(async () => {
  hashing = await loadJudgeHashing()
})

describe('checkReadingSignatures', () => {
  it('writes each digest and outcome at the reading’s index', async () => {
    const s = station('checked', 'mitte')
    const other = station('other', 'mitte')
    const good = await sign(s, 1n, 0n, [...TYPICAL])
    const stolen = { ...(await sign(other, 2n, 5n, [...TYPICAL])), device: s.account.address }
    const parts = hexToSignature(good.signature)
    const highS = signatureToHex({
      r: parts.r,
      s: `0x${(N - BigInt(parts.s)).toString(16).padStart(64, '0')}`,
      yParity: 1 - (parts.yParity ?? 0),
    })
    const readings: SignedReading[] = [
      good,
      stolen,
      { ...good, signature: highS },
      { ...good, signature: '0x00' },
      { ...good, seq: -1n },
      { ...good, device: '0x1234' },
      { ...good, values: [1n << 63n] },
      { ...good, signature: `0x${'00'.repeat(65)}` },
    ]
    const checks = checkReadingSignatures(readings, hashing.digest, hashing.keccak)
    expect([...checks.outcomes].map((o) => SIGNATURE_OUTCOMES[o])).toEqual([
      'VALID',
      'SIGNATURE_INVALID',
      'SIGNATURE_MALLEABLE',
      'SIGNATURE_MALFORMED',
      'SIGNATURE_MALFORMED',
      'SIGNATURE_MALFORMED',
      'SIGNATURE_MALFORMED',
      'SIGNATURE_INVALID',
    ])
    expect(bytesToHex(checks.digests.subarray(0, 32))).toBe(bytesToHex(hashing.digest(good)))
    expect(bytesToHex(checks.digests.subarray(32, 64))).toBe(bytesToHex(hashing.digest(stolen)))
    // each leaf is the readings tree's: OpenZeppelin's leaf hash of [digest] as bytes32
    const digest = bytesToHex(checks.digests.subarray(0, 32))
    expect(bytesToHex(checks.leafHashes.subarray(0, 32))).toBe(
      StandardMerkleTree.of([[digest]], ['bytes32']).leafHash([digest]),
    )
    // readings that cannot be encoded have no digest
    expect(checks.digests.subarray(4 * 32, 7 * 32).every((b) => b === 0)).toBe(true)
    expect(checks.leafHashes.subarray(4 * 32, 7 * 32).every((b) => b === 0)).toBe(true)
  })
})
