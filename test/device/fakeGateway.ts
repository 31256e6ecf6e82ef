/**
 * A small real HTTP gateway for device tests (node:http on 127.0.0.1, a free port): it checks
 * signatures and sequence numbers like the real one, or answers 503 / 400 on demand, and records
 * every request it received.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Address, Hex } from 'viem'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { type SignedReading, signedReadingJsonSchema } from '../../src/readings/reading.ts'
import { recoverSigner } from '../../src/readings/recoverReadingSigner.ts'

export type FakeGatewayMode = 'accept' | 'unavailable' | 'refuse'

export async function startFakeGateway(options: {
  chainId: number
  deviceRegistry: Address
  /** Readings to reject (beyond bad signatures and replays), with this reason. */
  reject?: (reading: SignedReading) => string | undefined
}) {
  const keccak = await loadKeccak256()
  const hash = await createReadingHasher(options.chainId, options.deviceRegistry)
  const last = new Map<string, { seq: bigint; signature: Hex }>()
  const requests: SignedReading[][] = []
  const accepted: SignedReading[] = []
  let mode: FakeGatewayMode = 'accept'

  const server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req)) as { readings: unknown[] }
    const readings = body.readings.map((raw) => {
      const r = signedReadingJsonSchema.parse(raw)
      return { ...r, device: r.device as Address, signature: r.signature as Hex }
    })
    requests.push(readings)
    res.setHeader('content-type', 'application/json')
    if (mode !== 'accept') {
      res.statusCode = mode === 'unavailable' ? 503 : 400
      const code = mode === 'unavailable' ? 'STORE_UNAVAILABLE' : 'BATCH_INVALID'
      res.end(JSON.stringify({ error: { code, message: `fake gateway: ${code}`, details: {} } }))
      return
    }
    const results = readings.map((reading, index) => {
      const device = reading.device.toLowerCase()
      const recovered = recoverSigner(keccak, hash(reading), reading.signature)
      const reason =
        recovered.type !== 'recovered' || recovered.address !== device
          ? 'SIGNATURE_MISMATCH'
          : (last.get(device)?.seq ?? 0n) >= reading.seq
            ? 'READING_REPLAYED'
            : options.reject?.(reading)
      if (reason) return { index, status: 'rejected' as const, reason, message: `fake gateway: ${reason}` }
      last.set(device, { seq: reading.seq, signature: reading.signature })
      accepted.push(reading)
      return { index, status: 'accepted' as const }
    })
    const acceptedCount = results.filter((r) => r.status === 'accepted').length
    res.end(JSON.stringify({ results, accepted: acceptedCount, rejected: results.length - acceptedCount }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    accepted,
    setMode: (next: FakeGatewayMode) => {
      mode = next
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      text += chunk
    })
    req.on('end', () => resolve(text))
    req.on('error', reject)
  })
}

/** Polls `condition` until it holds or `timeoutMs` passes (no fixed sleeps in tests). */
export async function waitFor(
  condition: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}
