/**
 * `depin device init|send` from the command line, as a sensor owner runs it on the device:
 * against a real chain, a real gateway (with its indexer) over HTTP, and a real MQTT broker.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { latLngToCell } from 'h3-js'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { listGateway } from '../../src/chain/listGateway.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { createMqttIngest, type MqttIngest } from '../../src/gateway/createMqttIngest.ts'
import { createIndexer, type Indexer } from '../../src/indexer/createIndexer.ts'
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/network/startEmbeddedBroker.ts'
import { waitFor } from '../helpers/testBlueprint.ts'
import { testDatabase } from '../helpers/testDatabase.ts'
import { startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

const run = promisify(execFile)
let net: TestNetwork
let dataDir: string
let indexer: Indexer
let gateway: Gateway
let broker: EmbeddedBroker
let ingest: MqttIngest
let gatewayOperator: string
beforeAll(async () => {
  net = await startTestNetwork()
  dataDir = mkdtempSync(join(tmpdir(), 'depin-device-cli-'))
  writeDeployment(join(dataDir, 'deployment.json'), net.deployment)
  indexer = createIndexer({
    publicClient: net.admin.publicClient,
    deployment: net.deployment,
    dbPath: join(dataDir, 'indexer.db'),
    pollIntervalMs: 100,
  })
  await indexer.start()
  // the gateway signs its verdicts with its operator key, listed on the registry: the CLI reads
  // that list over DEPIN_RPC_URL and believes only verdicts it signed
  const operator = privateKeyToAccount(generatePrivateKey())
  gatewayOperator = operator.address
  gateway = await createGateway({
    blueprint: loadBlueprint('blueprints/environment.yaml'),
    deployment: net.deployment,
    devices: indexer.store,
    database: testDatabase(dataDir, 'gateway'),
    signatureThreads: 0,
    operator,
  })
  await gateway.start()
  await listGateway({
    sender: net.admin,
    deployment: net.deployment,
    gateway: operator.address,
    url: gateway.url,
  })
  broker = await startEmbeddedBroker()
  ingest = createMqttIngest({ gateway, brokerUrl: broker.url, clientId: 'depin-gateway-device-cli-test' })
  await ingest.start()
}, 60_000)
afterAll(async () => {
  await ingest?.stop()
  await broker?.close()
  await gateway?.stop()
  await indexer?.stop()
  await net?.stop()
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
})

const keyFile = () => join(dataDir, 'devices', 'device.key')
/** Runs `depin device …`; resolves with its output and exit code, whatever the code. */
const depin = (...args: string[]) => depinWith({}, ...args)
/** `depin device …` with these environment variables besides the chain's DEPIN_RPC_URL. */
const depinWith = async (vars: Record<string, string>, ...args: string[]) => {
  try {
    const env = { ...process.env, DEPIN_RPC_URL: net.anvil.rpcUrl, DEPIN_GATEWAYS: '', ...vars }
    const { stdout, stderr } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'device',
        ...args,
        '--data-dir',
        dataDir,
        '--key-file',
        keyFile(),
      ],
      { env },
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

describe('depin device', () => {
  it('creates the key and registers the device where it stands, once', async () => {
    const first = await depin('init', '--lat', '52.52', '--lng', '13.405', '--rpc-url', net.anvil.rpcUrl)
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/key created in/)
    expect(first.stdout).toMatch(/registered in class 1 \(weather-station\) at cell /)
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600)
    const key = readFileSync(keyFile(), 'utf8')
    const address = /device (0x[0-9a-fA-F]{40})/.exec(first.stdout)?.[1] as `0x${string}`
    const onChain = await net.contracts.deviceRegistry.read.getDevice([address])
    expect(onChain.status).toBe(1)
    expect(onChain.h3Cell.toString(16)).toBe(latLngToCell(52.52, 13.405, 8))
    expect(first.stdout).not.toContain(key.trim()) // the key itself is never printed

    const again = await depin('init', '--lat', '52.52', '--lng', '13.405', '--rpc-url', net.anvil.rpcUrl)
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/key read from/)
    expect(again.stdout).toMatch(/already registered/)
    expect(readFileSync(keyFile(), 'utf8')).toBe(key)
    await waitFor('the gateway to see the device', () => indexer.store.getDevice(address))

    const badPlace = await depin('init', '--lat', '95', '--lng', '0', '--rpc-url', net.anvil.rpcUrl)
    expect(badPlace).toMatchObject({ code: 1, stderr: expect.stringContaining('INVALID_LOCATION') })
  })

  it('sends readings over HTTP and MQTT, queues them while the gateway is away, and says why one is refused', async () => {
    const values = 'temperature=21.5,humidity=55,pm25=12.3,pressure=1013.2'
    const http = await depin('send', '--values', values, '--gateway', gateway.url)
    expect(http).toMatchObject({ code: 0, stdout: expect.stringMatching(/^accepted seq 1 /) })
    const mqtt = await depin('send', '--values', values, '--mqtt-url', broker.url)
    expect(mqtt).toMatchObject({ code: 0, stdout: expect.stringMatching(/^accepted seq 2 /) })

    const away = await depin('send', '--values', values, '--gateway', 'http://127.0.0.1:9')
    expect(away).toMatchObject({ code: 3, stdout: expect.stringMatching(/^queued seq 3 .*cannot reach/) })
    const back = await depin('send', '--values', values, '--gateway', gateway.url)
    expect(back.code).toBe(0)
    expect(back.stdout).toMatch(/^accepted seq 3 .*\naccepted seq 4 /)

    const outOfScale = await depin(
      'send',
      '--values',
      'temperature=21.555,humidity=55,pm25=12.3,pressure=1013.2',
    )
    expect(outOfScale).toMatchObject({ code: 1, stderr: expect.stringContaining('READING_INVALID') })
    const malformed = await depin('send', '--values', 'temperature')
    expect(malformed).toMatchObject({ code: 1, stderr: expect.stringContaining('READING_INVALID') })
    expect(gateway.stats().accepted).toBe(4)
  })

  it('without RPC access, believes only the gateways of DEPIN_GATEWAYS: another signer leaves the reading queued', async () => {
    const values = 'temperature=21.5,humidity=55,pm25=12.3,pressure=1013.2'
    const before = gateway.stats().accepted
    const stranger = privateKeyToAccount(generatePrivateKey()).address
    const noRpc = { DEPIN_RPC_URL: 'http://127.0.0.1:9' }
    const wrong = await depinWith(
      { ...noRpc, DEPIN_GATEWAYS: stranger },
      'send',
      '--values',
      values,
      '--gateway',
      gateway.url,
    )
    expect(wrong).toMatchObject({
      code: 3,
      stdout: expect.stringMatching(/^queued seq 5 .*VERDICT_SIGNER_UNLISTED/),
    })
    expect(wrong.stderr).toMatch(/^ignored VERDICT_SIGNER_UNLISTED: /m)
    // the gateway stored it; the device resends it, and drops it on the listed gateway's verdict
    expect(gateway.stats().accepted).toBe(before + 1)
    const right = await depinWith(
      { ...noRpc, DEPIN_GATEWAYS: `${stranger},${gatewayOperator}` },
      'send',
      '--values',
      values,
      '--mqtt-url',
      broker.url,
    )
    expect(right).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^accepted seq 5 .*\naccepted seq 6 /),
    })
  })
})
