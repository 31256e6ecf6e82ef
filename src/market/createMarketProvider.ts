/**
 * An API operator as a data-market provider: its paywall (src/market/createPaywall.ts) over a
 * SQLite provider store, consumers' funds read from the DataMarket, the served bundles it
 * publishes built from its own indexer's view of its redemptions, and — with the provider's
 * wallet — a redeemer that turns the latest vouchers into fees every `redeemIntervalMs`.
 */
import type { Address, PublicClient } from 'viem'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { ConfigError } from '../errors.ts'
import type { IndexerStore } from '../indexer/indexerStore.ts'
import type { Context } from '../protocol/context.ts'
import type { Metrics } from '../protocol/metrics.ts'
import { createPaywall, type Paywall } from './createPaywall.ts'
import { type CreateRedeemerOptions, createRedeemer, type Redeemer } from './createRedeemer.ts'
import { openProviderStore, type ProviderStore } from './providerStore.ts'
import { readConsumerFunds } from './readConsumerFunds.ts'
import { createSiweSessions } from './siweSessions.ts'

export type CreateMarketProviderOptions = {
  blueprint: Blueprint
  deployment: Deployment
  publicClient: PublicClient
  /** The provider's address on the DataMarket's list. */
  provider: Address
  /** The provider store's SQLite file (channels and every reading served). */
  dbPath: string
  /** The provider's indexer (its redemptions, for the served bundles). */
  indexer: IndexerStore
  /** How long a read of a consumer's funds is trusted, ms (default 5 s). */
  fundsTtlMs?: number
  /** The provider's wallet: given, a redeemer runs (see `start`). */
  clients?: ChainClients
  /** Milliseconds between redemption rounds (default: one epoch). */
  redeemIntervalMs?: number
  onRedeemed?: CreateRedeemerOptions['onRedeemed']
  onError?: CreateRedeemerOptions['onError']
  context?: Context
  /** Where the paywall's metrics go (default: the context's, else none). */
  metrics?: Metrics
}

export type MarketProvider = {
  paywall: Paywall
  store: ProviderStore
  /** Present when the provider's wallet was given. */
  redeemer?: Redeemer
  /** Starts the redemption rounds (when there is a redeemer). */
  start(): void
  stop(): Promise<void>
}

export async function createMarketProvider(options: CreateMarketProviderOptions): Promise<MarketProvider> {
  const { blueprint, deployment, provider } = options
  const market = blueprint.market
  if (!market)
    throw new ConfigError(
      'NO_MARKET',
      `the blueprint "${blueprint.name}" has no market section: nothing is priced`,
    )
  const { genesisTime, epochLength, chainId } = deployment
  const metrics = options.metrics ?? options.context?.metrics
  const store = openProviderStore(options.dbPath, {
    // a dead writer is said loudly: every paid answer fails until the provider restarts
    onFailure: (error) =>
      options.onError
        ? options.onError('PROVIDER_STORE_FAILED', error)
        : options.context
          ? options.context.report('PROVIDER_STORE_FAILED', error)
          : console.error(JSON.stringify({ event: 'error', code: error.code, message: error.message })),
  })
  const paywall = createPaywall({
    store,
    sessions: createSiweSessions({ chainId }),
    keccak: await loadKeccak256(),
    domain: { chainId, market: deployment.contracts.dataMarket },
    provider,
    token: deployment.contracts.depinToken,
    prices: market.prices,
    readFunds: readConsumerFunds(options.publicClient, deployment.contracts.dataMarket, provider),
    ...(options.fundsTtlMs !== undefined ? { fundsTtlMs: options.fundsTtlMs } : {}),
    indexer: options.indexer,
    ...(metrics ? { metrics } : {}),
    windowOf: (epoch) => ({
      start: genesisTime + epoch * epochLength,
      end: genesisTime + (epoch + 1n) * epochLength,
    }),
  })
  const redeemer = options.clients
    ? createRedeemer({
        store,
        clients: options.clients,
        market: deployment.contracts.dataMarket,
        intervalMs: options.redeemIntervalMs ?? Number(epochLength) * 1000,
        ...(options.onRedeemed ? { onRedeemed: options.onRedeemed } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
        ...(options.context ? { context: options.context } : {}),
      })
    : undefined
  return {
    paywall,
    store,
    ...(redeemer ? { redeemer } : {}),
    start: () => redeemer?.start(),
    async stop() {
      await redeemer?.stop()
      await store.close()
    },
  }
}
