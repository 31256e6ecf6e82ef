import { createServer, type Socket } from 'node:net'
import { Aedes } from 'aedes'

export type EmbeddedBroker = {
  /** e.g. mqtt://127.0.0.1:41883 */
  url: string
  close(): Promise<void>
}

/**
 * An MQTT broker in this process (aedes, sessions and queued QoS 1 messages in memory), for a
 * network on one machine; a network that grows past it points devices and gateways at an
 * external broker (Mosquitto, EMQX) instead.
 * @param port on `host`; 0 (default) takes a free one
 */
export async function startEmbeddedBroker({
  host = '127.0.0.1',
  port = 0,
}: {
  host?: string
  port?: number
} = {}): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker({
    // A publish to a topic with an empty level (`depin/v1/readings/`) makes aedes drop the
    // connection of every client with a kept session subscribed to `…/+` (the gateway), once per
    // such publish: refused, which closes the publisher's connection instead. No depin topic has
    // an empty level. (Found by npm run fuzz.)
    authorizePublish: (_client, packet, callback) =>
      callback(packet.topic.split('/').includes('') ? new Error('a topic level is empty') : null),
  })
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    broker.handle(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const bound = typeof address === 'object' && address ? address.port : port
  return {
    url: `mqtt://${host}:${bound}`,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
