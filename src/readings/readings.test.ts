import { Wallet } from 'ethers'
import { bytesToHex, type Hex, hashTypedData, hexToSignature, signatureToHex, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { depinDomain, readingTypes } from '../chain/typedData.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { createReadingHasher } from './createReadingHasher.ts'
import { INT64_MAX, INT64_MIN, type Reading, signedReadingJsonSchema, UINT64_MAX } from './reading.ts'
import { recoverSigner } from './recoverReadingSigner.ts'
import { signReading } from './signReading.ts'

const chainId = 31337
const registry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

describe('reading hashing and signatures', () => {
  it('the fast hasher equals viem hashTypedData, negative and extreme values included', async () => {
    const hash = await createReadingHasher(chainId, registry)
    const cases: Reading[] = [
      {
        device: privateKeyToAccount(generatePrivateKey()).address,
        seq: 1n,
        time: 1764200000n,
        values: [2150n, 5520n, 123n, 10132n],
      },
      {
        device: privateKeyToAccount(generatePrivateKey()).address,
        seq: UINT64_MAX,
        time: 0n,
        values: [INT64_MIN, INT64_MAX, -1n, 0n],
      },
      { device: privateKeyToAccount(generatePrivateKey()).address, seq: 7n, time: 8n, values: [] },
      {
        device: privateKeyToAccount(generatePrivateKey()).address,
        seq: 42n,
        time: 99n,
        values: Array.from({ length: 20 }, (_, i) => BigInt(i * 1000 - 7000)),
      },
    ]
    for (const reading of cases) {
      const expected = hashTypedData({
        domain: depinDomain(chainId, registry),
        types: readingTypes,
        primaryType: 'Reading',
        message: reading,
      })
      expect(bytesToHex(hash(reading))).toBe(expected)
    }
  })

  it('recovers the device from its signature with the native addon', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(chainId, registry)
    const account = privateKeyToAccount(generatePrivateKey())
    const signed = await signReading({
      account,
      chainId,
      deviceRegistry: registry,
      seq: 3n,
      time: 100n,
      values: [-250n, 9000n],
    })
    const result = recoverSigner(keccak, hash(signed), signed.signature)
    expect(result).toEqual({ type: 'recovered', address: account.address.toLowerCase() })
    // another reading with the same signature recovers someone else
    const other = recoverSigner(keccak, hash({ ...signed, seq: 4n }), signed.signature)
    expect(other.type === 'recovered' && other.address).not.toBe(account.address.toLowerCase())
  })

  it('accepts a reading signed by a second implementation (ethers), per the documented typed data', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(chainId, registry)
    const wallet = new Wallet(generatePrivateKey())
    const message = {
      device: wallet.address as `0x${string}`,
      seq: 11n,
      time: 1764200123n,
      values: [1999n, -40n, 55n, 10130n],
    }
    const signature = (await wallet.signTypedData(
      { name: 'depin', version: '1', chainId, verifyingContract: registry },
      { Reading: [...readingTypes.Reading] },
      message,
    )) as Hex
    expect(recoverSigner(keccak, hash(message), signature)).toEqual({
      type: 'recovered',
      address: wallet.address.toLowerCase(),
    })
  })

  it('refuses malleable (high-s) and malformed signatures', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(chainId, registry)
    const account = privateKeyToAccount(generatePrivateKey())
    const signed = await signReading({
      account,
      chainId,
      deviceRegistry: registry,
      seq: 1n,
      time: 1n,
      values: [1n],
    })
    const { r, s, yParity } = hexToSignature(signed.signature)
    const malleated = signatureToHex({
      r,
      s: toHex(N - BigInt(s), { size: 32 }),
      yParity: yParity === 0 ? 1 : 0,
    })
    expect(recoverSigner(keccak, hash(signed), malleated)).toEqual({
      type: 'invalid',
      reason: 'SIGNATURE_MALLEABLE',
    })
    expect(recoverSigner(keccak, hash(signed), `${signed.signature.slice(0, 130)}05` as Hex)).toEqual({
      type: 'invalid',
      reason: 'SIGNATURE_MALFORMED',
    })
    expect(recoverSigner(keccak, hash(signed), '0x1234')).toEqual({
      type: 'invalid',
      reason: 'SIGNATURE_MALFORMED',
    })
    expect(recoverSigner(keccak, hash(signed), `0x${'00'.repeat(64)}1b`)).toEqual({
      type: 'invalid',
      reason: 'SIGNATURE_INVALID',
    })
  })

  it('validates the JSON wire form and names the bad field', () => {
    const good = {
      device: registry,
      seq: '1',
      time: 1764200000,
      values: ['-12', 5],
      signature: `0x${'ab'.repeat(65)}`,
    }
    expect(signedReadingJsonSchema.parse(good)).toMatchObject({
      seq: 1n,
      time: 1764200000n,
      values: [-12n, 5n],
    })
    const bad = signedReadingJsonSchema.safeParse({ ...good, seq: '-1', values: ['1.5'] })
    expect(bad.success).toBe(false)
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual(['seq', 'values.0'])
    expect(signedReadingJsonSchema.safeParse({ ...good, time: (UINT64_MAX + 1n).toString() }).success).toBe(
      false,
    )
  })
})
