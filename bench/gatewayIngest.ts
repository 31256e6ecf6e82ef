/**
 * Gateway ingest end to end: batches of signed readings → every check → durable SQLite write →
 * acknowledgement, over HTTP or through an MQTT broker (the embedded aedes, in the gateway's
 * process, as `depin up` runs it), into SQLite or PostgreSQL (`POSTGRES_URL`, a fresh schema).
 * `npx tsx bench/gatewayIngest.ts [readings] [threads] [http|mqtt] [sqlite|postgres]`.
 * The load comes from a worker thread sending pre-serialised batches over loopback, so the
 * client costs the server as little as possible; the gateway runs in the main thread with its
 * usual options. Signatures are made with libsecp256k1 directly (viem would take minutes).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type Address, bytesToHex, getAddress } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { loadBlueprint } from '../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../src/crypto/keccak.ts'
import { createGateway } from '../src/gateway/createGateway.ts'
import { createMqttIngest } from '../src/gateway/createMqttIngest.ts'
import { startEmbeddedBroker } from '../src/network/startEmbeddedBroker.ts'
import { createReadingHasher } from '../src/readings/createReadingHasher.ts'
import { toReadingJson } from '../src/readings/reading.ts'
import { offChainDeployment } from '../test/helpers/offChainDeployment.ts'
import { dropSchema, POSTGRES_URL, withSchema } from './benchDatabase.ts'

type Secp256k1 = {
  ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array
}
const secp256k1 = createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1

const NOW = 1_800_000_000n
const deployment = offChainDeployment(NOW - 10n, 3600n)

export type GatewayIngestResult = { readings: number; seconds: number; perSecond: number; accepted: number }

/** Measures readings/s through a real gateway (HTTP, checks, SQLite) for `count` readings. */
export async function benchGatewayIngest(
  count = 120_000,
  batchSize = 500,
  clients = 4,
  /** Signature worker threads of the gateway (default: its own default, one per core). */
  signatureThreads?: number,
  transport: 'http' | 'mqtt' = 'http',
  store: 'sqlite' | 'postgres' = 'sqlite',
): Promise<GatewayIngestResult> {
  const keccak = await loadKeccak256()
  const digest = await createReadingHasher(deployment.chainId, deployment.contracts.deviceRegistry)
  const devicesCount = Math.max(clients, Math.ceil(count / 50))
  const keys: Uint8Array[] = []
  const devices: Address[] = []
  for (let d = 0; d < devicesCount; d++) {
    const key = keccak(new TextEncoder().encode(`bench device ${d}`))
    keys.push(key)
    devices.push(
      getAddress(bytesToHex(keccak(secp256k1.publicKeyCreate(key, false).subarray(1)).subarray(12))),
    )
  }
  // client c posts the readings of devices d ≡ c (mod clients), in sequence order
  const bodies: string[][] = Array.from({ length: clients }, () => [])
  const pending: ReturnType<typeof toReadingJson>[][] = Array.from({ length: clients }, () => [])
  const perDevice = Math.ceil(count / devicesCount)
  for (let seq = 1; seq <= perDevice; seq++) {
    for (let d = 0; d < devicesCount; d++) {
      const reading = {
        device: devices[d] as Address,
        seq: BigInt(seq),
        time: NOW,
        values: [2150n, 5520n, 123n, 10132n],
      }
      const { signature, recid } = secp256k1.ecdsaSign(digest(reading), keys[d] as Uint8Array)
      const sig = new Uint8Array(65)
      sig.set(signature)
      sig[64] = 27 + recid
      const c = d % clients
      const list = pending[c] as ReturnType<typeof toReadingJson>[]
      list.push(toReadingJson({ ...reading, signature: bytesToHex(sig) }))
      if (list.length === batchSize) {
        bodies[c]?.push(JSON.stringify({ id: `${c}-${bodies[c]?.length}`, readings: list }))
        pending[c] = []
      }
    }
  }
  pending.forEach((list, c) => {
    if (list.length > 0) bodies[c]?.push(JSON.stringify({ id: `${c}-${bodies[c]?.length}`, readings: list }))
  })
  const total = bodies.flat().reduce((n, body) => n + JSON.parse(body).readings.length, 0)

  const dir = mkdtempSync(join(tmpdir(), 'depin-bench-gw-'))
  const schema = `bench_gateway_${process.pid}`
  const registered = new Set(devices.map((d) => d.toLowerCase()))
  const gateway = await createGateway({
    blueprint: loadBlueprint('blueprints/environment.yaml'),
    deployment,
    devices: {
      getDevice: (d) => (registered.has(d.toLowerCase()) ? { deviceClass: 1, status: 'active' } : undefined),
    },
    database: store === 'postgres' ? withSchema(POSTGRES_URL, schema) : join(dir, 'gateway.db'),
    clock: () => NOW,
    // as in production: every answer signed with the gateway's operator key
    operator: privateKeyToAccount(generatePrivateKey()),
    ...(signatureThreads !== undefined ? { signatureThreads } : {}),
  })
  await gateway.start()
  const broker = transport === 'mqtt' ? await startEmbeddedBroker() : undefined
  const ingest = broker
    ? createMqttIngest({ gateway, brokerUrl: broker.url, clientId: 'depin-bench-gateway' })
    : undefined
  await ingest?.start()
  try {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads')
       const acceptedOf = (text) => {
         const at = text.lastIndexOf('"accepted":')
         if (at < 0) throw new Error('unexpected answer: ' + text.slice(0, 300))
         return Number.parseInt(text.slice(at + 11), 10)
       }
       let post = async (body) => {
         const response = await fetch(workerData.url + '/v1/readings', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
         return acceptedOf(await response.text())
       }
       ;(async () => {
         if (workerData.brokerUrl) {
           // one connection; each answer is matched to its request by the id at its start
           const client = await require(workerData.mqtt).connectAsync(workerData.brokerUrl)
           const waiting = new Map()
           client.on('message', (_topic, payload) => {
             const text = payload.toString()
             const id = text.slice(7, text.indexOf('"', 7))
             waiting.get(id)?.(acceptedOf(text))
             waiting.delete(id)
           })
           await client.subscribeAsync('depin/v1/verdicts/bench', { qos: 1 })
           post = (body) => new Promise((resolve) => {
             waiting.set(body.slice(7, body.indexOf('"', 7)), resolve)
             client.publish('depin/v1/readings/bench', body, { qos: 1 })
           })
         }
         // warm-up, untimed: each client's first batch (JIT, worker threads, SQLite pages)
         let warm = 0
         for (const list of workerData.bodies) warm += await post(list[0])
         const started = performance.now()
         let accepted = 0
         await Promise.all(workerData.bodies.map(async (list) => {
           // the load generator only counts: parsing 500 verdicts would eat the server's CPU
           for (const body of list.slice(1)) {
             const n = await post(body) // not "accepted += await …": that reads accepted before awaiting
             accepted += n
           }
         }))
         parentPort.postMessage({ seconds: (performance.now() - started) / 1000, accepted, warm })
       })()`,
      {
        eval: true,
        workerData: {
          url: gateway.url,
          bodies,
          brokerUrl: broker?.url,
          mqtt: createRequire(import.meta.url).resolve('mqtt'),
        },
      },
    )
    const { seconds, accepted, warm } = await new Promise<{
      seconds: number
      accepted: number
      warm: number
    }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    await worker.terminate()
    const timed = total - warm
    if (accepted !== timed) throw new Error(`only ${accepted} of ${timed} readings were accepted`)
    return { readings: timed, seconds, perSecond: timed / seconds, accepted }
  } finally {
    await ingest?.stop()
    await broker?.close()
    await gateway.stop()
    rmSync(dir, { recursive: true, force: true })
    if (store === 'postgres') await dropSchema(POSTGRES_URL, schema)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const threads = process.argv[3] === undefined ? undefined : Number(process.argv[3])
  const transport = process.argv[4] === 'mqtt' ? 'mqtt' : 'http'
  const store = process.argv[5] === 'postgres' ? 'postgres' : 'sqlite'
  const result = await benchGatewayIngest(
    Number(process.argv[2] ?? 120_000),
    500,
    4,
    threads,
    transport,
    store,
  )
  console.log(
    `gateway ingest over ${transport} into ${store}: ${result.readings.toLocaleString('en-US')} readings in ${result.seconds.toFixed(2)} s = ${Math.round(result.perSecond).toLocaleString('en-US')} readings/s (${result.accepted} accepted)`,
  )
}
