/**
 * A small real HTTP gateway for device tests (node:http on 127.0.0.1, a free port): it checks
 * signatures and sequence numbers like the real one, or answers 503 / 400 on demand, signs its
 * verdicts (200 and 400) with its operator key as the real one does, and records every request
 * it received.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Address, bytesToHex, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { openGatewayList } from '../../src/device/openGatewayList.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { createVerdictHasher } from '../../src/readings/createVerdictHasher.ts'
import { verdictStatusOf } from '../../src/readings/gatewayVerdict.ts'
import { type SignedReading, signedReadingJsonSchema } from '../../src/readings/reading.ts'
import { recoverSigner } from '../../src/readings/recoverReadingSigner.ts'
import { signGatewayVerdict } from '../../src/readings/signGatewayVerdict.ts'

/** `resetOnce`: the next request's connection is reset before any answer, then it accepts again. */
export type FakeGatewayMode = 'accept' | 'unavailable' | 'refuse' | 'resetOnce'

export async function startFakeGateway(options: {
  chainId: number
  deviceRegistry: Address
  /** Readings to reject (beyond bad signatures and replays), with this reason. */
  reject?: (reading: SignedReading) => string | undefined
}) {
  const keccak = await loadKeccak256()
  const hash = await createReadingHasher(options.chainId, options.deviceRegistry)
  const hashVerdict = await createVerdictHasher(options.chainId, options.deviceRegistry)
  const operator = privateKeyToAccount(generatePrivateKey())
  const last = new Map<string, { seq: bigint; signature: Hex }>()
  const requests: SignedReading[][] = []
  const accepted: SignedReading[] = []
  let mode: FakeGatewayMode = 'accept'

  const server = createServer(async (req, res) => {
    const bytes = await readBody(req)
    if (mode === 'resetOnce') {
      mode = 'accept'
      req.socket.destroy()
      return
    }
    const request = bytesToHex(keccak(bytes))
    const body = JSON.parse(bytes.toString('utf8')) as { readings: unknown[] }
    const readings = body.readings.map((raw) => {
      const r = signedReadingJsonSchema.parse(raw)
      return { ...r, device: r.device as Address, signature: r.signature as Hex }
    })
    requests.push(readings)
    res.setHeader('content-type', 'application/json')
    if (mode !== 'accept') {
      res.statusCode = mode === 'unavailable' ? 503 : 400
      const code = mode === 'unavailable' ? 'STORE_UNAVAILABLE' : 'BATCH_INVALID'
      const error = { error: { code, message: `fake gateway: ${code}`, details: {} } }
      const signature =
        mode === 'refuse'
          ? await signGatewayVerdict({
              operator,
              hash: hashVerdict,
              verdict: { request, status: 400, code, readings: [] },
            })
          : {}
      res.end(JSON.stringify({ ...error, ...signature }))
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
    const signature = await signGatewayVerdict({
      operator,
      hash: hashVerdict,
      verdict: {
        request,
        status: 200,
        code: '',
        readings: readings.map((reading, i) => ({
          device: reading.device,
          seq: reading.seq,
          digest: bytesToHex(hash(reading)),
          ...verdictStatusOf(results[i] as (typeof results)[number]),
        })),
      },
    })
    res.end(
      JSON.stringify({
        results,
        accepted: acceptedCount,
        rejected: results.length - acceptedCount,
        ...signature,
      }),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    /** The address its verdicts are signed by. */
    operator: operator.address,
    /** The gateway list of a device that believes this gateway. */
    gateways: openGatewayList({ addresses: [operator.address] }),
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

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
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
