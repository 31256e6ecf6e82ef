import { blueprintPathOf, loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { ConfigError } from '../errors.ts'
import { startEmbeddedNetwork } from '../network/startEmbeddedNetwork.ts'
import { useCaseOf } from '../usecases/registry.ts'

export type UpOptions = {
  dataDir: string
  blueprint: string
  port: string
  gatewayPort: string
  apiPort: string
  mqttPort: string
  mqttUrl?: string
  fleetTransport: 'mqtt' | 'http'
  stations: string
  validators: string
  seed: string
  faults: string
  validatorProcesses: boolean
  /** The API as the data market's provider (default true; --no-market serves it free). */
  market: boolean
}

/** `depin up`: the whole network in one process until Ctrl-C; a second run resumes it. */
export async function runUp(options: UpOptions): Promise<void> {
  const blueprint = loadBlueprint(options.blueprint)
  // checked before anything starts, not after the chain and the validators are up
  const stations = Number(options.stations)
  if (!Number.isInteger(stations) || stations < 1) {
    throw new ConfigError('STATIONS_INVALID', `--stations ${options.stations} is not a positive integer`)
  }
  const validators = Number(options.validators)
  if (!Number.isInteger(validators) || validators < 1 || validators > 31) {
    throw new ConfigError(
      'VALIDATORS_INVALID',
      `--validators ${options.validators} is not an integer from 1 to 31`,
    )
  }
  const simulation = useCaseOf(blueprint).simulationOptions?.({
    faults: options.faults,
    transport: options.fleetTransport,
    size: stations,
  })
  const started = Date.now()
  const log = (line: string) =>
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`)
  log(`starting network "${blueprint.name}" in ${options.dataDir}`)
  // nothing may end or cripple the network silently: said with its code, then everything stops
  let failed: (() => void) | undefined
  const failedOnce = new Promise<void>((resolve) => {
    failed = resolve
  })
  let exitCode = 0
  const stopLoudly = (code: string, error: unknown) => {
    log(`error ${code}: ${error instanceof Error ? error.message : String(error)}; stopping`)
    exitCode = 1
    failed?.()
  }
  process.on('unhandledRejection', (reason) => stopLoudly('UNHANDLED_REJECTION', reason))
  process.on('uncaughtException', (error) => stopLoudly('UNCAUGHT_EXCEPTION', error))
  const network = await startEmbeddedNetwork({
    dataDir: options.dataDir,
    blueprint,
    rpcPort: Number(options.port),
    gatewayPort: Number(options.gatewayPort),
    apiPort: Number(options.apiPort),
    mqttPort: Number(options.mqttPort),
    ...(options.mqttUrl !== undefined ? { mqttUrl: options.mqttUrl } : {}),
    stations,
    validators,
    seed: Number(options.seed),
    ...(simulation ? { simulation } : {}),
    validatorProcesses: options.validatorProcesses,
    market: options.market,
    blueprintPath: blueprintPathOf(options.blueprint),
    log,
    onFatal: ({ code, error }) => stopLoudly(code, error),
  })
  log('running; Ctrl-C stops (the chain saves its state, a second `depin up` resumes)')
  log(`claim an owner's rewards: npx depin claim --owner 0x70997970C51812dc3A010C7d01b50e0d17dc79C8`)
  await new Promise<void>((resolve) => {
    let signals = 0
    const onSignal = () => {
      signals += 1
      if (signals === 1) resolve()
      else if (signals === 2) log('still stopping (saving state); Ctrl-C again to quit at once')
      else process.exit(130)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    failedOnce.then(resolve)
  })
  log('stopping…')
  // after a failure, a stop that hangs must not keep a broken network half-alive
  if (exitCode !== 0) setTimeout(() => process.exit(exitCode), 30_000).unref()
  await network.stop()
  log('stopped')
  if (exitCode !== 0) process.exit(exitCode)
}
