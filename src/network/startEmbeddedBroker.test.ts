import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { type EmbeddedBroker, startEmbeddedBroker } from './startEmbeddedBroker.ts'

let broker: EmbeddedBroker | undefined
const clients: mqtt.MqttClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  await broker?.close()
})

describe('startEmbeddedBroker', () => {
  it('keeps a kept-session subscriber connected when someone publishes to a topic with an empty level', async () => {
    broker = await startEmbeddedBroker()
    // the gateway's way: a kept session, subscribed to every reply id, one message at a time
    const gateway = mqtt.connect(broker.url, { clientId: 'gateway', clean: false, manualConnect: true })
    clients.push(gateway)
    const received: string[] = []
    gateway.handleMessage = (packet, done) => {
      if (packet.cmd === 'publish') received.push(packet.topic)
      done()
    }
    let drops = 0
    gateway.on('close', () => drops++)
    gateway.connect()
    await new Promise((resolve) => gateway.once('connect', resolve))
    await gateway.subscribeAsync('depin/v1/readings/+', { qos: 1 })

    // a publisher of an empty reply id is refused: its connection closes, its publish unacknowledged
    const stray = await mqtt.connectAsync(broker.url, { clientId: 'stray', reconnectPeriod: 0 })
    clients.push(stray)
    const outcome = await Promise.race([
      stray.publishAsync('depin/v1/readings/', 'null', { qos: 1 }).then(() => 'acknowledged'),
      new Promise((resolve) => stray.once('close', () => resolve('refused'))),
    ])
    expect(outcome).toBe('refused')

    // and the next request reaches the gateway over the connection it had
    const device = await mqtt.connectAsync(broker.url, { clientId: 'device' })
    clients.push(device)
    await device.publishAsync('depin/v1/readings/r1', '{}', { qos: 1 })
    const deadline = Date.now() + 10_000
    while (received.length === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10))
    expect(received).toEqual(['depin/v1/readings/r1'])
    expect(drops).toBe(0)
  })
})
