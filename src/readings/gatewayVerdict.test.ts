import { verifyTypedData } from 'ethers'
import { bytesToHex, hashTypedData, keccak256, toBytes } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { depinDomain, gatewayVerdictTypes } from '../chain/typedData.ts'
import { createVerdictHasher } from './createVerdictHasher.ts'
import { type GatewayVerdict, gatewayVerdictTypedData, UNPARSED_READING } from './gatewayVerdict.ts'
import { signGatewayVerdict } from './signGatewayVerdict.ts'

const chainId = 31337
const deviceRegistry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const device = privateKeyToAccount(generatePrivateKey()).address

const verdicts: GatewayVerdict[] = [
  {
    request: keccak256(toBytes('{"id":"1","readings":[]}')),
    status: 200,
    code: '',
    readings: [
      { device, seq: 1n, digest: keccak256(toBytes('a')), status: 'accepted', reason: '' },
      {
        device,
        seq: (1n << 64n) - 1n,
        digest: keccak256(toBytes('b')),
        status: 'accepted',
        reason: 'DUPLICATE',
      },
      { device, seq: 3n, digest: keccak256(toBytes('c')), status: 'rejected', reason: 'READING_REPLAYED' },
      { ...UNPARSED_READING, status: 'rejected', reason: 'SCHEMA_INVALID' },
    ],
  },
  { request: keccak256(toBytes('x')), status: 413, code: 'BATCH_TOO_LARGE', readings: [] },
]

describe('gateway verdicts as EIP-712 typed data', () => {
  it('the fast hasher equals viem hashTypedData over the documented types', async () => {
    const hash = await createVerdictHasher(chainId, deviceRegistry)
    for (const verdict of verdicts) {
      const expected = hashTypedData({
        domain: depinDomain(chainId, deviceRegistry),
        types: gatewayVerdictTypes,
        primaryType: 'GatewayVerdict',
        message: verdict,
      })
      expect(bytesToHex(hash(verdict))).toBe(expected)
      // twice: the reused buffers leave nothing behind
      expect(bytesToHex(hash(verdict))).toBe(expected)
    }
    expect(() => hash({ ...(verdicts[1] as GatewayVerdict), status: 70_000 })).toThrow(RangeError)
  })

  it('a signed verdict checks, from its typed-data JSON, with a second implementation (ethers)', async () => {
    const operator = privateKeyToAccount(generatePrivateKey())
    const hash = await createVerdictHasher(chainId, deviceRegistry)
    const verdict = verdicts[0] as GatewayVerdict
    const signed = await signGatewayVerdict({ operator, hash, verdict })
    expect(signed).toMatchObject({ request: verdict.request, gateway: operator.address })
    // the same signature as viem's signTypedData
    expect(signed.signature).toBe(
      await operator.signTypedData({
        domain: depinDomain(chainId, deviceRegistry),
        types: gatewayVerdictTypes,
        primaryType: 'GatewayVerdict',
        message: verdict,
      }),
    )
    const typedData = JSON.parse(
      JSON.stringify(gatewayVerdictTypedData({ chainId, deviceRegistry, verdict })),
    )
    const { EIP712Domain: _, ...types } = typedData.types
    expect(verifyTypedData(typedData.domain, types, typedData.message, signed.signature)).toBe(
      operator.address,
    )
    // another answer for the same request does not check
    const altered = { ...typedData.message, readings: [...typedData.message.readings] }
    altered.readings[2] = { ...altered.readings[2], status: 'accepted', reason: '' }
    expect(verifyTypedData(typedData.domain, types, altered, signed.signature)).not.toBe(operator.address)
  })
})
