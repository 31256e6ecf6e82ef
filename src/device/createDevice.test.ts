import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TypedDataEncoder, Wallet } from 'ethers'
import { bytesToHex, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { createReadingHasher } from '../readings/createReadingHasher.ts'
import { recoverSigner } from '../readings/recoverReadingSigner.ts'
import { createDevice } from './createDevice.ts'
import { openGatewayList } from './openGatewayList.ts'
import { readingTypedData } from './readingTypedData.ts'

const blueprint = loadBlueprint('blueprints/environment.yaml')
const chainId = 31337
const deviceRegistry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const values = [2150n, 5520n, 123n, 10132n]

function device(stateDir?: string, key: Hex = generatePrivateKey()) {
  return createDevice({
    account: privateKeyToAccount(key),
    chainId,
    deviceRegistry,
    gatewayUrl: 'http://127.0.0.1:9',
    gateways: openGatewayList({ addresses: [] }),
    blueprint,
    deviceClass: 1,
    ...(stateDir ? { stateDir } : {}),
  })
}

describe('createDevice: signing', () => {
  it('signs readings the device key recovers from, with strictly increasing sequence numbers', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(chainId, deviceRegistry)
    const d = device()
    // concurrent calls each get their own number, in call order
    const readings = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => d.sign({ values, time: 1_764_200_000n + BigInt(i) })),
    )
    expect(readings.map((r) => r.seq)).toEqual([1n, 2n, 3n, 4n, 5n])
    expect(d.lastSeq()).toBe(5n)
    for (const r of readings) {
      expect(recoverSigner(keccak, hash(r), r.signature)).toEqual({
        type: 'recovered',
        address: d.address.toLowerCase(),
      })
    }
  })

  it('converts decimal strings by field name exactly, and refuses values that do not fit the class', async () => {
    const d = device()
    const reading = await d.sign({
      values: { temperature: '-12.5', humidity: '55.2', pm25: '12.3', pressure: '1013.2' },
      time: 1n,
    })
    expect(reading.values).toEqual([-1250n, 5520n, 123n, 10132n])
    await expect(d.sign({ values: [1n, 2n] })).rejects.toMatchObject({ code: 'READING_INVALID' })
    await expect(
      d.sign({ values: { temperature: '1.234', humidity: '1', pm25: '1', pressure: '900' } }),
    ).rejects.toThrow(/temperature: .*more than 2 decimals/)
    await expect(d.sign({ values: { temperature: '1', humidity: '1', pm25: '1' } })).rejects.toThrow(
      /missing field pressure/,
    )
    await expect(d.sign({ values: [1n, 2n, 3n, 1n << 63n] })).rejects.toThrow(/int64/)
    // a refused reading uses no number
    expect(d.lastSeq()).toBe(1n)
  })

  it('keeps counting above the last number after a restart on the same state dir', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-state-'))
    const key = generatePrivateKey()
    const first = device(stateDir, key)
    for (let i = 0; i < 3; i++) await first.sign({ values, time: BigInt(i) })
    expect(readFileSync(join(stateDir, `${first.address}.seq`), 'utf8')).toBe('3\n')

    const restarted = device(stateDir, key)
    expect(restarted.lastSeq()).toBe(3n)
    expect((await restarted.sign({ values })).seq).toBe(4n)
    // another device in the same dir has its own counter
    expect((await device(stateDir).sign({ values })).seq).toBe(1n)
  })

  it('stops on a corrupt sequence file rather than guess a number', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-state-'))
    const key = generatePrivateKey()
    writeFileSync(join(stateDir, `${privateKeyToAccount(key).address}.seq`), 'garbage')
    expect(() => device(stateDir, key)).toThrow(expect.objectContaining({ code: 'SEQUENCE_FILE_CORRUPT' }))
  })

  it('refuses an unknown device class', () => {
    expect(() =>
      createDevice({
        account: privateKeyToAccount(generatePrivateKey()),
        chainId,
        deviceRegistry,
        gatewayUrl: 'http://127.0.0.1:9',
        gateways: openGatewayList({ addresses: [] }),
        blueprint,
        deviceClass: 42,
      }),
    ).toThrow(expect.objectContaining({ code: 'DEVICE_CLASS_UNKNOWN' }))
  })

  it('refuses to send over HTTP without the gateways whose verdicts count', () => {
    expect(() =>
      createDevice({
        account: privateKeyToAccount(generatePrivateKey()),
        chainId,
        deviceRegistry,
        gatewayUrl: 'http://127.0.0.1:9',
        blueprint,
        deviceClass: 1,
      }),
    ).toThrow(expect.objectContaining({ code: 'DEVICE_NO_GATEWAY_LIST' }))
  })
})

describe('readingTypedData', () => {
  it('is JSON that a second EIP-712 implementation (ethers) hashes and signs like the SDK', async () => {
    const keccak = await loadKeccak256()
    const hash = await createReadingHasher(chainId, deviceRegistry)
    const wallet = new Wallet(generatePrivateKey())
    const reading = {
      device: wallet.address as Hex,
      seq: 12n,
      time: 1_764_200_000n,
      values: [-250n, 5520n, 0n, 10132n],
    }
    // through a JSON round trip, as a file for `cast wallet sign --data --from-file` would be
    const typedData = JSON.parse(JSON.stringify(readingTypedData({ chainId, deviceRegistry, reading })))
    const { EIP712Domain: _, ...types } = typedData.types
    expect(TypedDataEncoder.hash(typedData.domain, types, typedData.message)).toBe(bytesToHex(hash(reading)))
    const signature = (await wallet.signTypedData(typedData.domain, types, typedData.message)) as Hex
    expect(recoverSigner(keccak, hash(reading), signature)).toEqual({
      type: 'recovered',
      address: wallet.address.toLowerCase(),
    })
  })
})
