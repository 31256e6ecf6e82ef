import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { createDevice } from '../../src/device/createDevice.ts'
import { startFakeGateway } from './fakeGateway.ts'

const blueprint = loadBlueprint('blueprints/environment.yaml')
const chainId = 31337
const deviceRegistry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const values = (temperature: bigint) => [temperature, 5520n, 123n, 10132n]
/** The fake gateway rejects a temperature of 99.99 °C (standing in for any per-reading refusal). */
const REJECTED_TEMPERATURE = 9999n

let gateway: Awaited<ReturnType<typeof startFakeGateway>>
beforeAll(async () => {
  gateway = await startFakeGateway({
    chainId,
    deviceRegistry,
    reject: (r) => (r.values[0] === REJECTED_TEMPERATURE ? 'VALUE_OUT_OF_RANGE' : undefined),
  })
})
afterAll(async () => gateway?.stop())

function device(stateDir: string, key: Hex, gatewayUrl = gateway.url) {
  return createDevice({
    account: privateKeyToAccount(key),
    chainId,
    deviceRegistry,
    gatewayUrl,
    gateways: gateway.gateways,
    blueprint,
    deviceClass: 1,
    stateDir,
    // a 500-reading answer is signed and checked in pure JS on both sides: on a loaded machine
    // that takes longer than the 10 s default, and the reading would be queued, not lost
    timeoutMs: 60_000,
  })
}
const sent = () => gateway.requests.flat()

describe('createDevice: delivery to a gateway over HTTP', () => {
  it('queues readings while the gateway fails and delivers them first, in order, once it answers', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-send-'))
    const key = generatePrivateKey()
    const d = device(stateDir, key)
    const queueFile = join(stateDir, `${d.address}.queue`)
    gateway.setMode('unavailable')
    const r1 = await d.sign({ values: values(2000n), time: 100n })
    const r2 = await d.sign({ values: values(2001n), time: 105n })
    const failed = await d.send([r1, r2])
    expect(failed).toMatchObject({ accepted: 0, rejected: 0, queued: 2 })
    expect(failed.outcomes.map((o) => o.type)).toEqual(['queued', 'queued'])
    expect(
      readFileSync(queueFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
    ).toEqual(['1', '2'])

    // still failing: the next reading is appended behind them
    const r3 = await d.sign({ values: values(2002n), time: 110n })
    expect((await d.send([r3])).queued).toBe(3)
    const lastFailed = gateway.requests.at(-1)
    expect(lastFailed?.map((r) => r.seq)).toEqual([1n, 2n, 3n])

    // a restarted agent finds its queue on disk
    gateway.setMode('accept')
    const restarted = device(stateDir, key)
    expect(restarted.queued()).toBe(3)
    const r4 = await restarted.sign({ values: values(2003n), time: 115n })
    const delivered = await restarted.send([r4])
    expect(delivered).toMatchObject({ accepted: 4, rejected: 0, queued: 0 })
    expect(gateway.requests.at(-1)?.map((r) => r.seq)).toEqual([1n, 2n, 3n, 4n])
    expect(readFileSync(queueFile, 'utf8')).toBe('')
    // nothing is sent twice once delivered
    const before = gateway.requests.length
    expect(await restarted.send([])).toMatchObject({ accepted: 0, queued: 0, outcomes: [] })
    expect(gateway.requests.length).toBe(before)
  })

  it('queues readings when the gateway cannot be reached at all', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-send-'))
    const key = generatePrivateKey()
    const down = await startFakeGateway({ chainId, deviceRegistry })
    await down.stop() // a port nobody listens on any more
    const d = device(stateDir, key, down.url)
    const reading = await d.sign({ values: values(1500n) })
    const result = await d.send([reading])
    expect(result.queued).toBe(1)
    expect(result.outcomes[0]).toMatchObject({
      type: 'queued',
      message: expect.stringContaining('cannot reach'),
    })

    const delivered = await device(stateDir, key).send([])
    expect(delivered).toMatchObject({ accepted: 1, queued: 0 })
    expect(sent().some((r) => r.signature === reading.signature)).toBe(true)
  })

  it('never retries a rejected reading, nor a request the gateway refused as a whole', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-send-'))
    const d = device(stateDir, generatePrivateKey())
    gateway.setMode('accept')
    const bad = await d.sign({ values: values(REJECTED_TEMPERATURE) })
    const good = await d.sign({ values: values(2100n) })
    const result = await d.send([bad, good])
    expect(result).toMatchObject({ accepted: 1, rejected: 1, queued: 0 })
    expect(result.outcomes[0]).toMatchObject({ type: 'rejected', reason: 'VALUE_OUT_OF_RANGE' })

    gateway.setMode('refuse')
    const refused = await d.send([await d.sign({ values: values(2101n) })])
    expect(refused).toMatchObject({ accepted: 0, rejected: 1, queued: 0 })
    expect(refused.outcomes[0]).toMatchObject({ type: 'rejected', reason: 'BATCH_INVALID' })

    gateway.setMode('accept')
    const before = gateway.requests.length
    const next = await d.sign({ values: values(2102n) })
    expect(await d.send([next])).toMatchObject({ accepted: 1, queued: 0 })
    expect(
      gateway.requests
        .slice(before)
        .flat()
        .map((r) => r.seq),
    ).toEqual([next.seq])
  })

  it('sends again at once when the connection is reset before any answer', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-send-'))
    const d = device(stateDir, generatePrivateKey())
    gateway.setMode('resetOnce')
    const before = gateway.requests.length
    const result = await d.send([await d.sign({ values: values(1n), time: 1n })])
    expect(result).toMatchObject({ accepted: 1, queued: 0 })
    expect(gateway.requests.length - before).toBe(1) // the reset one never reached its handler's end
  })

  it('splits a large send into requests of at most 500 readings', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'device-send-'))
    const d = device(stateDir, generatePrivateKey())
    gateway.setMode('accept')
    const readings = []
    for (let i = 0; i < 501; i++) readings.push(await d.sign({ values: values(BigInt(i)), time: BigInt(i) }))
    const before = gateway.requests.length
    const result = await d.send(readings)
    const first = result.outcomes[0]
    expect(result, first?.type === 'queued' ? first.message : undefined).toMatchObject({
      accepted: 501,
      queued: 0,
    })
    expect(gateway.requests.slice(before).map((r) => r.length)).toEqual([500, 1])
  })
})
