/**
 * The embedded network (`depin up`) with a big fleet on this machine: how fast the fleet
 * registers (devices a second, from the network's own progress line), then, over ten settled
 * epochs, the share of the honest stations' readings each epoch accepted (no faulty stations:
 * every reading sent is honest). Everything as `depin up` runs it: anvil with one-second blocks,
 * the embedded broker, one gateway, three validator processes, the API.
 * `npx tsx bench/bigNetwork.ts [stations=10000] [epochs=10]`
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadBlueprint } from '../src/blueprint/loadBlueprint.ts'
import { startEmbeddedNetwork } from '../src/network/startEmbeddedNetwork.ts'
import type { FleetBatch } from '../src/usecases/environment/simulator/runFleet.ts'

export type BigNetworkResult = {
  stations: number
  /** Devices registered a second, as the network's progress line said. */
  registrationPerSecond: number
  /** Per settled epoch (the first after the fleet started is left out: it began mid-epoch). */
  epochs: { epoch: string; sent: number; accepted: number; share: number }[]
  /** The lowest share of all those epochs. */
  worstShare: number
}

export async function benchBigNetwork(stations = 10_000, epochCount = 10): Promise<BigNetworkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'depin-bench-big-'))
  const blueprintPath = 'blueprints/environment.yaml'
  const blueprint = loadBlueprint(blueprintPath)
  const sent = new Map<bigint, number>()
  let firstEpoch: bigint | undefined
  let genesis = 0n
  let epochLength = 1n
  let registrationPerSecond = Number.NaN
  const onBatch = (batch: FleetBatch) => {
    for (const reading of batch.readings) {
      const epoch = (reading.time - genesis) / epochLength
      firstEpoch ??= epoch
      sent.set(epoch, (sent.get(epoch) ?? 0) + 1)
    }
  }
  const network = await startEmbeddedNetwork({
    dataDir: dir,
    blueprint,
    blueprintPath,
    rpcPort: 0,
    gatewayPort: 0,
    apiPort: 0,
    stations,
    validatorProcesses: true,
    market: false,
    simulation: { faults: [], onBatch },
    log: (line) => {
      const rate = /newly registered, ([\d,]+)\/s\)/.exec(line)
      if (rate) registrationPerSecond = Number((rate[1] as string).replaceAll(',', ''))
      if (/fleet: registering|newly registered|settled/.test(line)) console.error(`  ${line}`)
    },
  })
  genesis = network.deployment.genesisTime
  epochLength = network.deployment.epochLength
  try {
    // the fleet's first epoch began mid-way: the next ten whole ones count
    const deadline = Date.now() + (epochCount + 4) * Number(epochLength) * 1000 + 120_000
    for (;;) {
      if (firstEpoch !== undefined) {
        const from = firstEpoch + 1n
        const settled = network.indexer.store.getEpoch(from + BigInt(epochCount) - 1n)
        if (settled) break
      }
      if (Date.now() > deadline) throw new Error(`fewer than ${epochCount} epochs settled in time`)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
    const from = (firstEpoch as bigint) + 1n
    const epochs = []
    for (let e = from; e < from + BigInt(epochCount); e++) {
      const accepted = network.indexer.store.getEpoch(e)?.accepted ?? 0
      const sentIn = sent.get(e) ?? 0
      epochs.push({
        epoch: e.toString(),
        sent: sentIn,
        accepted,
        share: sentIn === 0 ? 0 : accepted / sentIn,
      })
    }
    return {
      stations,
      registrationPerSecond,
      epochs,
      worstShare: Math.min(...epochs.map((e) => e.share)),
    }
  } finally {
    await network.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await benchBigNetwork(Number(process.argv[2] ?? 10_000), Number(process.argv[3] ?? 10))
  console.log(JSON.stringify(result, null, 1))
}
