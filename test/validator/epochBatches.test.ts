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
import {
  type CheckedBatch,
  checkBatch,
  fetchBatchByHash,
  fetchGatewayBatch,
  fetchGatewayBatchHash,
  mergeBatches,
} from '../../src/validator/epochBatches.ts'

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
    if (
      !batch ||
      (request.url !== `/v1/batches/${epoch}` && request.url !== `/v1/batches/by-hash/${batch.hash}`)
    ) {
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

/** Fetches a stand-in gateway's batch, failing the test when it is not sealed and valid. */
async function sealed(url: string, epoch: bigint): Promise<CheckedBatch> {
  const result = await fetchGatewayBatch(await loadKeccak256(), url, epoch)
  if (result.type !== 'sealed') throw new Error(`expected a sealed batch, got ${JSON.stringify(result)}`)
  return result.batch
}

describe('epoch batches', () => {
  it('merges batches: identical readings once, and the authentic twin of a forged one', async () => {
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
    const a = await sealed(await serveBatch(7n, [real, second]), 7n)
    const b = await sealed(await serveBatch(7n, [forged, second, others]), 7n)

    // batches carry addresses and signatures in lower case
    const canonical = (r: SignedReading) => ({
      ...r,
      device: r.device.toLowerCase() as Hex,
      signature: r.signature.toLowerCase() as Hex,
    })
    const expected = [real, second, others].map(canonical).sort(compareReadings)
    expect(mergeBatches([a, b], isAuthentic)).toEqual(expected)
    expect(mergeBatches([b, a], isAuthentic)).toEqual(expected)
    // without the authenticity check, both twins reach the judge (which would keep the lower signature)
    expect(mergeBatches([a, b])).toHaveLength(4)
  })

  it('tells an unsealed gateway from one sending bytes that do not match their hash, and fetches by hash', async () => {
    const keccak = await loadKeccak256()
    const url = await serveBatch(3n, [])
    const batch = await sealed(url, 3n)
    const unsealed = await fetchGatewayBatch(keccak, await serveBatch(3n, undefined), 3n)
    expect(unsealed.type).toBe('unavailable')
    const down = await fetchGatewayBatch(keccak, 'http://127.0.0.1:1', 3n)
    expect(down.type).toBe('unavailable')
    const liar = await fetchGatewayBatch(keccak, await serveBatch(3n, [], true), 3n)
    expect(liar).toMatchObject({ type: 'invalid', reason: expect.stringMatching(/hashes to/) })
    // another epoch's batch is not this epoch's
    expect((await fetchGatewayBatch(keccak, url, 4n)).type).toBe('unavailable')

    const byHash = await fetchBatchByHash(keccak, ['http://127.0.0.1:1', url], batch.hash, 3n)
    expect(byHash?.hash).toBe(batch.hash)
    expect(await fetchBatchByHash(keccak, [url], batch.hash, 4n)).toBeUndefined()
    expect(await fetchBatchByHash(keccak, [url], `0x${'ab'.repeat(32)}`, 3n)).toBeUndefined()
  })

  it('looks up a batch by its hash without its bytes, and takes a late one by content address within a range of epochs', async () => {
    const keccak = await loadKeccak256()
    const url = await serveBatch(5n, [])
    const batch = await sealed(url, 5n)
    expect(await fetchGatewayBatchHash(url, 5n)).toBe(batch.hash)
    expect(await fetchGatewayBatchHash(url, 6n)).toBeUndefined()
    expect(await fetchGatewayBatchHash(await serveBatch(5n, undefined), 5n)).toBeUndefined()
    expect(await fetchGatewayBatchHash('http://127.0.0.1:1', 5n)).toBeUndefined()
    // a late batch of epoch 5 counted in epoch 8: in the range, or refused with the epochs named
    expect(checkBatch(keccak, batch.bytes, batch.hash, { from: 2n, to: 8n }).epoch).toBe(5n)
    expect(() => checkBatch(keccak, batch.bytes, batch.hash, { from: 6n, to: 8n })).toThrow(/not one of 6–8/)
    expect(() => checkBatch(keccak, batch.bytes, batch.hash, 8n)).toThrow(/epoch 5's, not 8's/)
    const late = await fetchBatchByHash(keccak, [url], batch.hash, { from: 2n, to: 8n })
    expect(late?.epoch).toBe(5n)
  })
})
