import { loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { startEmbeddedNetwork } from '../network/startEmbeddedNetwork.ts'

export type UpOptions = {
  dataDir: string
  blueprint: string
  port: string
  gatewayPort: string
  apiPort: string
  stations: string
  validators: string
  seed: string
}

/** `depin up`: the whole network in one process until Ctrl-C; a second run resumes it. */
export async function runUp(options: UpOptions): Promise<void> {
  const blueprint = loadBlueprint(options.blueprint)
  const started = Date.now()
  const log = (line: string) =>
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`)
  log(`starting network "${blueprint.name}" in ${options.dataDir}`)
  const network = await startEmbeddedNetwork({
    dataDir: options.dataDir,
    blueprint,
    rpcPort: Number(options.port),
    gatewayPort: Number(options.gatewayPort),
    apiPort: Number(options.apiPort),
    stations: Number(options.stations),
    validators: Number(options.validators),
    seed: Number(options.seed),
    log,
  })
  log('running; Ctrl-C stops (the chain saves its state, a second `depin up` resumes)')
  log(`claim an owner's rewards: npx depin claim --owner 0x70997970C51812dc3A010C7d01b50e0d17dc79C8`)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  log('stopping…')
  await network.stop()
  log('stopped')
}
