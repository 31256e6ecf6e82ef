import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type Account, formatUnits, type Hex, parseEther } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { createApiServer } from '../api/createApiServer.ts'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import { networkParametersOf } from '../blueprint/loadBlueprint.ts'
import { connectChain } from '../chain/connectChain.ts'
import { type ChainClients, createChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { deploymentPath, ensureDeployed } from '../chain/ensureDeployed.ts'
import { joinAsValidator } from '../chain/joinAsValidator.ts'
import { listGateway } from '../chain/listGateway.ts'
import { loadOrCreateKey } from '../chain/loadOrCreateKey.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { anvilAccounts } from '../chain/startAnvil.ts'
import { ConfigError, DepinError } from '../errors.ts'
import { createGateway } from '../gateway/createGateway.ts'
import { createMqttIngest } from '../gateway/createMqttIngest.ts'
import { createIndexer, type Indexer } from '../indexer/createIndexer.ts'
import { createMarketProvider, type MarketProvider } from '../market/createMarketProvider.ts'
import { listProvider } from '../market/listProvider.ts'
import { createMetrics } from '../protocol/metrics.ts'
import { allReadingsTopics, DEFAULT_TOPIC_PREFIX } from '../readings/readingTopics.ts'
import { useCaseOf } from '../usecases/registry.ts'
import { createValidator, type Validator } from '../validator/createValidator.ts'
import { createLocalReportExchange } from '../validator/reportExchange.ts'
import { createValidatorStore, type ValidatorStore } from '../validator/validatorStore.ts'
import { spawnValidatorProcesses } from './spawnValidatorProcesses.ts'
import { startEmbeddedBroker } from './startEmbeddedBroker.ts'

export type StartEmbeddedNetworkOptions = {
  dataDir: string
  blueprint: Blueprint
  /** Ports on 127.0.0.1; 0 takes a free one. */
  rpcPort?: number
  gatewayPort?: number
  apiPort?: number
  /** An external MQTT broker for the gateway and the fleet (e.g. mqtt://127.0.0.1:1883); default: an embedded one. */
  mqttUrl?: string
  /** Port of the embedded MQTT broker on 127.0.0.1 (default 0: a free one). */
  mqttPort?: number
  stations?: number
  validators?: number
  /** Seed of the simulated fleet: the same seed gives the same stations and keys. */
  seed?: number
  /**
   * Options of the use case's simulator, which it reads (the environment's:
   * EnvironmentSimulationOptions, with its transport, faults, a fleet of the caller's, interval).
   */
  simulation?: Readonly<Record<string, unknown>>
  /** Run each validator as a process of its own (`depin validator run`) instead of in this one. */
  validatorProcesses?: boolean
  /** The blueprint's file, which validator processes load. */
  blueprintPath?: string
  /**
   * The API as the data market's provider when the blueprint has a market (default true): its key
   * in `<dataDir>/api/key` (0600), listed on the DataMarket with the API's URL, priced routes
   * behind the paywall, and the vouchers redeemed every `redeemIntervalMs` (default one epoch).
   */
  market?: boolean
  redeemIntervalMs?: number
  /** Where readings are paid, how old a reading must be for the free preview (default 3,600 s). */
  previewDelaySeconds?: number
  /** Progress lines, one per step and one per settled epoch. */
  log?: (line: string) => void
  /** Something the network cannot work on from (an indexer halted on a reorg); already logged. */
  onFatal?: (failure: { code: string; error: unknown }) => void
}

export type EmbeddedNetwork = {
  rpcUrl: string
  gatewayUrl: string
  /** The broker the gateway takes readings from. */
  mqttUrl: string
  apiUrl: string
  deployment: Deployment
  /** The validators running in this process (none when they run as processes of their own). */
  validators: Validator[]
  indexer: Indexer
  /** The API's data-market provider (when the blueprint has a market). */
  provider?: MarketProvider & { address: Hex }
  stop(): Promise<void>
}

/**
 * Runs every role of a network in this process, each with its own keys and store: the chain
 * (embedded anvil, one block a second, state in the data dir), the contracts (deployed once), a
 * gateway, validators that really sign and exchange their reports, indexers, the API and a
 * simulated fleet. A second start with the same data dir resumes the same network.
 */
export async function startEmbeddedNetwork(options: StartEmbeddedNetworkOptions): Promise<EmbeddedNetwork> {
  const { dataDir, blueprint } = options
  const log = options.log ?? (() => {})
  /** What leaves the network unable to work: said, then handed to the caller (depin up stops). */
  const fatal = (code: string, error: unknown) => {
    log(`error ${code}: ${error instanceof Error ? error.message : String(error)}`)
    options.onFatal?.({ code, error })
  }
  const stopping: (() => Promise<void>)[] = []
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop()
  }
  try {
    const chain = await connectChain({ dataDir, port: options.rpcPort ?? 0, blockTime: 1 })
    stopping.push(() => chain.close())
    log(`chain ${chain.chain.id} at ${chain.rpcUrl} (embedded anvil, state in ${join(dataDir, 'chain')})`)
    const { deployment, deployed } = await ensureDeployed({
      clients: chain,
      dataDir,
      parameters: networkParametersOf(blueprint),
      onProgress: (line) => log(`  ${line}`),
    })

    // validators: own keys (0600 files), funded and bonded from the genesis allocation once
    const validatorCount = options.validators ?? 3
    const validatorClients: ChainClients[] = []
    for (let i = 0; i < validatorCount; i++) {
      const privateKey = loadOrCreateKey(join(dataDir, 'validators', `v${i}`, 'key'))
      const clients = await createChainClients({ rpcUrl: chain.rpcUrl, privateKey, pollingInterval: 250 })
      validatorClients.push(clients)
      const address = (clients.account as Account).address
      const bond = blueprint.validators.minBond
      if (!(await joinAsValidator({ sponsor: chain, validator: clients, deployment, bond }))) continue
      log(
        `  validator v${i} ${address} joined with a bond of ${formatUnits(bond, 18)} ${blueprint.token.symbol}`,
      )
    }

    const startIndexer = async (dbPath: string) => {
      mkdirSync(dirname(dbPath), { recursive: true })
      let lastError = 0
      const indexer = createIndexer({
        publicClient: chain.publicClient,
        deployment,
        dbPath,
        pollIntervalMs: 500,
        onReorg: (reorg) =>
          log(
            `indexer ${dbPath}: the chain reorganized: ${reorg.depth} blocks rolled back to block ${reorg.to.block} (${reorg.dropped} events dropped), replaying`,
          ),
        // an RPC hiccup is retried (said once per 30 s); a halt (a reorg) stops the network loudly
        onError: (error) => {
          const code = error instanceof DepinError ? error.code : 'INDEXER_RETRYING'
          if (error instanceof DepinError && !error.retryable) return fatal('INDEXER_HALTED', error)
          if (Date.now() - lastError < 30_000) return
          lastError = Date.now()
          log(`indexer ${dbPath}: error ${code}: ${error instanceof Error ? error.message : String(error)}`)
        },
      })
      await indexer.start()
      stopping.push(() => indexer.stop())
      return indexer
    }

    const gatewayIndexer = await startIndexer(join(dataDir, 'gateway', 'indexer.db'))
    // the gateway's operator key: its address is the gateway's id on the registry's list, and it
    // signs the gateway's verdicts
    const gatewayOperator = privateKeyToAccount(loadOrCreateKey(join(dataDir, 'gateway', 'key')))
    const gateway = await createGateway({
      blueprint,
      deployment,
      devices: gatewayIndexer.store,
      database: join(dataDir, 'gateway', 'gateway.db'),
      port: options.gatewayPort ?? 0,
      operator: gatewayOperator,
    })
    await gateway.start()
    stopping.push(() => gateway.stop())
    // on the registry's list, where validators (and devices) find it
    const gatewayId = gatewayOperator.address
    const listed = await listGateway({ sender: chain, deployment, gateway: gatewayId, url: gateway.url })
    log(
      `gateway ${gatewayId} at ${gateway.url} (POST /v1/readings), ${listed === 'unchanged' ? 'listed' : `${listed} on the registry's list`}`,
    )
    let mqttUrl = options.mqttUrl
    if (mqttUrl === undefined) {
      const broker = await startEmbeddedBroker({ port: options.mqttPort ?? 0 })
      stopping.push(() => broker.close())
      mqttUrl = broker.url
    }
    // a client id of its own, so the broker keeps its session (and what arrives meanwhile) across restarts
    const mqttIngest = createMqttIngest({
      gateway,
      brokerUrl: mqttUrl,
      clientId: `depin-gateway-${gatewayId.toLowerCase()}`,
      onConnection: (event) =>
        log(
          `gateway: MQTT broker ${mqttUrl} ${event.type === 'lost' ? 'lost, reconnecting' : 'reachable again'}`,
        ),
    })
    await mqttIngest.start()
    stopping.push(() => mqttIngest.stop())
    log(
      `gateway takes readings over MQTT from ${mqttUrl}${options.mqttUrl === undefined ? ' (embedded broker)' : ''}, topic ${allReadingsTopics(DEFAULT_TOPIC_PREFIX)}`,
    )

    const validators: Validator[] = []
    let rewardsStore: ValidatorStore
    if (options.validatorProcesses) {
      // each validator a process of its own, sharing reports over HTTP (`depin validator run`)
      if (!options.blueprintPath)
        throw new ConfigError('BLUEPRINT_PATH_MISSING', 'validator processes need the blueprint file')
      const dirs = validatorClients.map((_, i) => join(dataDir, 'validators', `v${i}`))
      const processes = await spawnValidatorProcesses({
        validatorDirs: dirs,
        rpcUrl: chain.rpcUrl,
        blueprintPath: options.blueprintPath,
        deploymentPath: deploymentPath(dataDir),
        onEvent: (i, event) => {
          if (event.event === 'error' || event.event === 'equivocation_proven') {
            log(`validator v${i}: ${event.event} ${String(event.error ?? event.validator ?? '')}`)
          }
        },
      })
      stopping.push(() => processes.stop())
      log(`validators: ${processes.urls.length} processes, report exchanges at ${processes.urls.join(', ')}`)
      rewardsStore = createValidatorStore(join(dirs[0] as string, 'validator.db'))
      stopping.push(async () => rewardsStore.close())
    } else {
      const exchange = createLocalReportExchange()
      for (const [i, clients] of validatorClients.entries()) {
        const dir = join(dataDir, 'validators', `v${i}`)
        const validator = await createValidator({
          blueprint,
          deployment,
          clients,
          indexer: await startIndexer(join(dir, 'indexer.db')),
          dbPath: join(dir, 'validator.db'),
          exchange,
          onError: (error) =>
            log(`validator v${i}: ${error instanceof Error ? error.message : String(error)}`),
        })
        await validator.start()
        stopping.push(() => validator.stop())
        validators.push(validator)
      }
      rewardsStore = (validators[0] as Validator).store
    }

    // the API as the data market's provider: its own key pays for redeeming the vouchers
    // the API's metrics, the paywall's among them, at the API's GET /metrics
    const apiMetrics = createMetrics('api')
    let provider: (MarketProvider & { address: Hex }) | undefined
    if (blueprint.market && options.market !== false) {
      const providerClients = await createChainClients({
        rpcUrl: chain.rpcUrl,
        privateKey: loadOrCreateKey(join(dataDir, 'api', 'key')),
        pollingInterval: 250,
      })
      const address = (providerClients.account as Account).address
      if ((await chain.publicClient.getBalance({ address })) < parseEther('1')) {
        const wallet = chain.walletClient as NonNullable<ChainClients['walletClient']>
        await sendTransaction(
          chain.publicClient,
          wallet.sendTransaction({ to: address, value: parseEther('10') }),
        )
      }
      const symbol = blueprint.token.symbol
      const market = await createMarketProvider({
        metrics: apiMetrics,
        blueprint,
        deployment,
        publicClient: chain.publicClient,
        provider: address,
        dbPath: join(dataDir, 'api', 'provider.db'),
        indexer: gatewayIndexer.store,
        clients: providerClients,
        ...(options.redeemIntervalMs !== undefined ? { redeemIntervalMs: options.redeemIntervalMs } : {}),
        onRedeemed: (r) =>
          log(
            `market: redeemed ${formatUnits(r.amount, 18)} ${symbol} from consumer ${r.consumer} (${formatUnits(r.cumulativeAmount, 18)} in all), tx ${r.txHash.slice(0, 12)}…`,
          ),
        onError: (code, error) =>
          log(`market: error ${code}: ${error instanceof Error ? error.message : String(error)}`),
      })
      stopping.push(() => market.stop())
      provider = Object.assign(market, { address })
    }

    const api = await createApiServer({
      metrics: apiMetrics,
      rpcUrl: chain.rpcUrl,
      deployment,
      blueprint,
      indexer: gatewayIndexer.store,
      rewards: rewardsStore,
      port: options.apiPort ?? 0,
      ...(provider ? { paywall: provider.paywall } : {}),
      ...(options.previewDelaySeconds !== undefined
        ? { previewDelaySeconds: options.previewDelaySeconds }
        : {}),
      onError: ({ code, error }) =>
        log(`api: error ${code}: ${error instanceof Error ? error.message : String(error)}`),
    })
    await api.start()
    stopping.push(() => api.stop())
    log(`api at ${api.url} (GET ${api.routes.join(', ')})`)
    log(`dashboard at ${api.url}/`)
    if (provider) {
      const listed = await listProvider({
        sender: chain,
        deployment,
        provider: provider.address,
        url: api.url,
      })
      provider.start()
      const { prices } = provider.paywall
      const price = (amount: bigint) => `${formatUnits(amount, 18)} ${blueprint.token.symbol}`
      log(
        `market: the API is provider ${provider.address} on the DataMarket ${deployment.contracts.dataMarket} (${listed === 'unchanged' ? 'listed' : listed}): ${price(prices.reading)} a reading, ${price(prices.aggregate)} an aggregate, ${price(prices.streamedReading)} a streamed reading`,
      )
    }

    const owners = await Promise.all(
      anvilAccounts.slice(1, 6).map((privateKey) => createChainClients({ rpcUrl: chain.rpcUrl, privateKey })),
    )
    const useCase = useCaseOf(blueprint)
    if (useCase.simulate) {
      // the use case's own simulated devices (the environment: weather stations; connectivity:
      // hotspots beaconing and witnessing)
      const simulation = await useCase.simulate({
        blueprint,
        deployment,
        publicClient: chain.publicClient,
        ownerClients: owners,
        gatewayUrl: gateway.url,
        gatewayAddress: gatewayId,
        mqttUrl,
        stateDir: dataDir,
        syncRegistry: async () => {
          await gatewayIndexer.syncOnce()
        },
        devicesAt: (time) => gatewayIndexer.store.devicesAt(time),
        lastReportBefore: (time) => gatewayIndexer.store.epochs().find((e) => e.timestamp < time),
        ...(options.stations !== undefined ? { size: options.stations } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        ...(options.simulation !== undefined ? { options: options.simulation } : {}),
        log,
      })
      stopping.push(() => simulation.stop())
    } else log(`use case ${useCase.id} has no simulator: no devices are simulated`)

    // one line per settled epoch
    let printed = gatewayIndexer.store.epochs(1)[0]?.epoch ?? -1n
    let gatewaySeen: Record<string, number> = {}
    const list = (counts: Record<string, number>) =>
      Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ') || 'none'
    const progress = setInterval(() => {
      try {
        printSettled()
      } catch (error) {
        log(`error PROGRESS_FAILED: ${error instanceof Error ? error.message : String(error)}`)
      }
    }, 1_000)
    function printSettled() {
      for (const epoch of gatewayIndexer.store.epochs(5).reverse()) {
        if (epoch.epoch <= printed) continue
        printed = epoch.epoch
        const judged = rewardsStore.result(epoch.epoch)
        // the use case's own counts (connectivity: beacons accepted, witnesses rewarded)
        const summary = Object.entries(useCase.epochSummary ?? {}).map(([unit, words]) => {
          const j = useCase.unitNames.indexOf(unit)
          const sum = rewardsStore.receipts(epoch.epoch).reduce((total, r) => total + (r.units[j] ?? 0n), 0n)
          return ` ${sum} ${words};`
        })
        const gatewayNow = gateway.stats().rejected
        const gatewayNew = Object.fromEntries(
          Object.entries(gatewayNow).map(([reason, n]) => [reason, n - (gatewaySeen[reason] ?? 0)]),
        )
        gatewaySeen = gatewayNow
        log(
          `epoch ${epoch.epoch} settled in tx ${epoch.txHash.slice(0, 12)}…: ${epoch.accepted} ${useCase.epochSummary ? 'records' : 'readings'} accepted;${summary.join('')}` +
            ` rejected by validators: ${list(judged?.rejectedByReason ?? {})}; by the gateway: ${list(gatewayNew)};` +
            ` ${formatUnits(epoch.minted, 18)} ${blueprint.token.symbol} minted; ${epoch.signers.length} of ${validatorClients.length} validators signed`,
        )
      }
    }
    stopping.push(async () => clearInterval(progress))
    log(
      deployed
        ? `new network up: the first epoch settles within ≈ ${blueprint.epochs.lengthSeconds + blueprint.epochs.sealDelaySeconds + 5} s`
        : 'resumed the network from the data dir',
    )
    return {
      rpcUrl: chain.rpcUrl,
      gatewayUrl: gateway.url,
      mqttUrl,
      apiUrl: api.url,
      deployment,
      validators,
      indexer: gatewayIndexer,
      ...(provider ? { provider } : {}),
      stop: stopAll,
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}

export type { Hex }
