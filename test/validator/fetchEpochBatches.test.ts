import { createServer, type Server } from 'node:http'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { compareReadings, encodeBatch } from '../../src/gateway/batchFormat.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import type { SignedReading } from '../../src/readings/reading.ts'
import { recoverSigner } from '../../src/readings/recoverReadingSigner.ts'
import { signReading } from '../../src/readings/signReading.ts'
import { fetchEpochBatches } from '../../src/validator/fetchEpochBatches.ts'

const chainId = 31337
const deviceRegistry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
})

/** A gateway stand-in on loopback serving one sealed epoch (or none), with an optional lying hash header. */
async function serveBatch(
  epoch: bigint,
  readings: SignedReading[] | undefined,
  lieAboutHash = false,
): Promise<string> {
  const keccak = await loadKeccak256()
  const batch = readings && encodeBatch(keccak, epoch, [...readings].sort(compareReadings))
  const server = createServer((request, response) => {
    if (!batch || request.url !== `/v1/batches/${epoch}`) {
      response.writeHead(404).end('{}')
      return
    }
    response.writeHead(200, { 'x-batch-hash': lieAboutHash ? `0x${'00'.repeat(32)}` : batch.hash })
    response.end(Buffer.from(batch.bytes))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

describe('fetchEpochBatches', () => {
  it('unions the gateways, keeps identical readings once, and keeps the authentic twin of a forged one', async () => {
    const keccak = await loadKeccak256()
    const digest = await createReadingHasher(chainId, deviceRegistry)
    const isAuthentic = (r: SignedReading) => {
      const signer = recoverSigner(keccak, digest(r), r.signature)
      return signer.type === 'recovered' && signer.address === r.device.toLowerCase()
    }
    const device = privateKeyToAccount(generatePrivateKey())
    const other = privateKeyToAccount(generatePrivateKey())
    const sign = (account: typeof device, seq: bigint) =>
      signReading({ account, chainId, deviceRegistry, seq, time: 100n, values: [1n, 2n] })
    const real = await sign(device, 1n)
    // a twin for the same (device, seq) whose signature sorts lower but is not the device's
    const forged: SignedReading = { ...real, values: [9n, 9n], signature: `0x00${'11'.repeat(64)}` as Hex }
    const second = await sign(device, 2n)
    const others = await sign(other, 1n)
    const a = await serveBatch(7n, [real, second])
    const b = await serveBatch(7n, [forged, second, others])

    const result = await fetchEpochBatches(keccak, [a, b], 7n, isAuthentic)
    if (result.type !== 'ready') throw new Error('expected the batches')
    expect(result.batchHashes).toHaveLength(2)
    // batches carry addresses and signatures in lower case
    const canonical = (r: SignedReading) => ({
      ...r,
      device: r.device.toLowerCase() as Hex,
      signature: r.signature.toLowerCase() as Hex,
    })
    expect(result.readings).toEqual([real, second, others].map(canonical).sort(compareReadings))
    // without the authenticity check, both twins reach the judge (which would keep the lower signature)
    const unchecked = await fetchEpochBatches(keccak, [a, b], 7n)
    expect(unchecked.type === 'ready' && unchecked.readings).toHaveLength(4)
  })

  it('waits for a gateway that has not sealed, and refuses bytes that do not match their hash', async () => {
    const keccak = await loadKeccak256()
    const sealed = await serveBatch(3n, [])
    const unsealed = await serveBatch(3n, undefined)
    expect(await fetchEpochBatches(keccak, [sealed, unsealed], 3n)).toEqual({
      type: 'pending',
      missing: [unsealed],
    })
    const liar = await serveBatch(3n, [], true)
    await expect(fetchEpochBatches(keccak, [sealed, liar], 3n)).rejects.toThrow(/hashes to/)
  })
})
