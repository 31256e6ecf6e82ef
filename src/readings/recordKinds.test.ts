import { bytesToHex, hashTypedData, keccak256, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { depinDomain } from '../chain/typedData.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { createReadingHasher } from './createReadingHasher.ts'
import { recordJsonSchema, toRecordJson } from './reading.ts'
import {
  READING_KIND,
  type RecordKind,
  recordKindProblem,
  recordMessage,
  recordTypes,
} from './recordKinds.ts'
import { recoverSigner } from './recoverReadingSigner.ts'
import { signRecord } from './signReading.ts'

const CHAIN_ID = 31337
const REGISTRY = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const WITNESS: RecordKind = {
  name: 'Witness',
  fields: [
    { name: 'beacon', type: 'bytes32' },
    { name: 'rssi', type: 'int32' },
    { name: 'snr', type: 'int32' },
    { name: 'frequencyKhz', type: 'uint64' },
    { name: 'count', type: 'uint32' },
    { name: 'offset', type: 'int64' },
  ],
}
const KINDS = [READING_KIND, WITNESS]
const device = privateKeyToAccount(keccak256(toHex('a hotspot')))

describe('record kinds', () => {
  it('hashes every kind as viem hashTypedData does, and signs so that the fast path recovers the device', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(CHAIN_ID, REGISTRY, KINDS)
    const beacon = BigInt(keccak256(toHex('a beacon')))
    for (const [kind, values] of [
      [0, [2150n, -30n, 0n, 9_223_372_036_854_775_807n]],
      [0, []],
      [1, [beacon, -11_250n, 750n, 868_100n, 4_294_967_295n, -(1n << 63n)]],
      [1, [0n, 0n, 0n, 0n, 0n, 0n]],
    ] as const) {
      const record = {
        device: device.address,
        seq: 7n,
        time: 1_764_201_605n,
        values: [...values],
        ...(kind ? { kind } : {}),
      }
      const expected = hashTypedData({
        domain: depinDomain(CHAIN_ID, REGISTRY),
        types: recordTypes(KINDS[kind] as RecordKind),
        primaryType: (KINDS[kind] as RecordKind).name,
        message: recordMessage(KINDS[kind] as RecordKind, record),
      })
      expect(bytesToHex(hash(record))).toBe(expected)
      const signed = await signRecord({
        account: device,
        chainId: CHAIN_ID,
        deviceRegistry: REGISTRY,
        kinds: KINDS,
        kind,
        seq: 7n,
        time: record.time,
        values: [...values],
      })
      expect(signed.kind).toBe(kind === 0 ? undefined : kind)
      expect(recoverSigner(keccak, hash(signed), signed.signature)).toEqual({
        type: 'recovered',
        address: device.address.toLowerCase(),
      })
    }
  })

  it('parses a record of a named kind from the wire, checking its values against the kind', async () => {
    const schema = recordJsonSchema(KINDS)
    const signed = await signRecord({
      account: device,
      chainId: CHAIN_ID,
      deviceRegistry: REGISTRY,
      kinds: KINDS,
      kind: 1,
      seq: 3n,
      time: 9n,
      values: [255n, -5n, 1n, 868_100n, 2n, 3n],
    })
    const json = toRecordJson(signed, KINDS)
    expect(json.kind).toBe('Witness')
    expect(schema.parse(JSON.parse(JSON.stringify(json)))).toEqual(signed)
    // bytes32 as 0x hex is taken too
    expect(schema.parse({ ...json, values: ['0xff', ...json.values.slice(1)] })).toEqual(signed)
    for (const [values, message] of [
      [['1', '2'], /carries 6 values/],
      [['-1', '0', '0', '0', '0', '0'], /a decimal integer or 0x hex/],
      [['1', String(1n << 31n), '0', '0', '0', '0'], /rssi is out of int32 range/],
      [['1', '0', '0', '-1', '0', '0'], /frequencyKhz is out of uint64 range/],
    ] as const) {
      const result = schema.safeParse({ ...json, values })
      expect(result.success, String(values)).toBe(false)
      expect(result.error?.issues[0]?.message).toMatch(message)
    }
    expect(schema.safeParse({ ...json, kind: 'Beacon' }).success).toBe(false)
    // hex is for bytes32 fields only, and decimals are canonical
    for (const values of [
      ['1', '0x10', '0', '0', '0', '0'],
      ['1', '007', '0', '0', '0', '0'],
      ['1', '-0', '0', '0', '0', '0'],
      ['0x', '0', '0', '0', '0', '0'],
    ])
      expect(schema.safeParse({ ...json, values }).success, String(values)).toBe(false)
    // the hasher refuses a kind the network does not have
    const hash = await createReadingHasher(CHAIN_ID, REGISTRY, KINDS)
    expect(() => hash({ ...signed, kind: 2 })).toThrow(RangeError)
    // the first kind needs no name, and its values are int64
    const reading = schema.parse({ ...json, kind: undefined, values: ['1', '-2'] })
    expect(reading.kind).toBeUndefined()
    expect(schema.safeParse({ ...json, kind: undefined, values: [String(1n << 63n)] }).success).toBe(false)
  })

  it('refuses kinds that cannot be one', () => {
    expect(recordKindProblem(READING_KIND)).toBeUndefined()
    expect(recordKindProblem(WITNESS)).toBeUndefined()
    expect(recordKindProblem({ name: 'lower', fields: [{ name: 'a', type: 'uint64' }] })).toMatch(/type name/)
    expect(
      recordKindProblem({
        name: 'Mixed',
        fields: [
          { name: 'a', type: 'int64[]' },
          { name: 'b', type: 'uint64' },
        ],
      }),
    ).toMatch(/only field/)
    expect(recordKindProblem({ name: 'Clash', fields: [{ name: 'seq', type: 'uint64' }] })).toMatch(/repeats/)
  })
})
