/**
 * The API as a data-market provider over settled readings (test/helpers/settledReadings.ts): the
 * provider listed on the DataMarket, its paywall over a SQLite provider store (funds read from the
 * chain on every charge, served bundles published), and the API listening on loopback.
 */
import { join } from 'node:path'
import { type ApiServer, createApiServer } from '../../src/api/createApiServer.ts'
import type { Blueprint } from '../../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { createPaywall } from '../../src/market/createPaywall.ts'
import { openProviderStore, type ProviderStore } from '../../src/market/providerStore.ts'
import { readConsumerFunds } from '../../src/market/readConsumerFunds.ts'
import { createSiweSessions } from '../../src/market/siweSessions.ts'
import type { SettledReadings } from './settledReadings.ts'
import type { TestNetwork } from './testNetwork.ts'

export type PaidApi = { api: ApiServer; providerStore: ProviderStore; stop(): Promise<void> }

export async function startPaidApi(
  net: TestNetwork,
  settled: SettledReadings,
  options: { dir: string; blueprint: Blueprint; provider: Awaited<ReturnType<TestNetwork['actor']>> },
): Promise<PaidApi> {
  const { blueprint, provider } = options
  const market = blueprint.market
  if (!market) throw new Error(`the ${blueprint.name} blueprint names no market`)
  await net.send(net.contracts.dataMarket.write.addProvider([provider.address, 'http://127.0.0.1:1/']))
  const providerStore = openProviderStore(join(options.dir, 'provider.db'))
  const { genesisTime, epochLength } = net.deployment
  const api = await createApiServer({
    deployment: net.deployment,
    blueprint,
    indexer: settled.indexer.store,
    rewards: settled.store,
    paywall: createPaywall({
      store: providerStore,
      sessions: createSiweSessions({ chainId: net.chainId }),
      keccak: await loadKeccak256(),
      domain: { chainId: net.chainId, market: net.deployment.contracts.dataMarket },
      provider: provider.address,
      token: net.deployment.contracts.depinToken,
      prices: market.prices,
      readFunds: readConsumerFunds(
        net.admin.publicClient,
        net.deployment.contracts.dataMarket,
        provider.address,
      ),
      fundsTtlMs: 0,
      indexer: settled.indexer.store,
      windowOf: (epoch) => ({
        start: genesisTime + epoch * epochLength,
        end: genesisTime + (epoch + 1n) * epochLength,
      }),
    }),
  })
  await api.start()
  return {
    api,
    providerStore,
    async stop() {
      await api.stop()
      providerStore.close()
    },
  }
}
