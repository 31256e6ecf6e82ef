/**
 * The API as a data-market provider over settled readings (test/helpers/settledReadings.ts): the
 * provider listed on the DataMarket, its paywall over a SQLite provider store (funds read from the
 * chain on every charge, served bundles published), and the API listening on loopback.
 */
import { join } from 'node:path'
import { type ApiServer, createApiServer } from '../../src/api/createApiServer.ts'
import type { Blueprint } from '../../src/blueprint/loadBlueprint.ts'
import { createMarketProvider } from '../../src/market/createMarketProvider.ts'
import type { Paywall } from '../../src/market/createPaywall.ts'
import type { ProviderStore } from '../../src/market/providerStore.ts'
import type { SettledReadings } from './settledReadings.ts'
import type { TestNetwork } from './testNetwork.ts'

export type PaidApi = {
  api: ApiServer
  providerStore: ProviderStore
  paywall: Paywall
  stop(): Promise<void>
}

export async function startPaidApi(
  net: TestNetwork,
  settled: SettledReadings,
  options: { dir: string; blueprint: Blueprint; provider: Awaited<ReturnType<TestNetwork['actor']>> },
): Promise<PaidApi> {
  const { blueprint, provider } = options
  await net.send(net.contracts.dataMarket.write.addProvider([provider.address, 'http://127.0.0.1:1/']))
  const market = await createMarketProvider({
    blueprint,
    deployment: net.deployment,
    publicClient: net.admin.publicClient,
    provider: provider.address,
    dbPath: join(options.dir, 'provider.db'),
    indexer: settled.indexer.store,
    fundsTtlMs: 0,
  })
  const api = await createApiServer({
    deployment: net.deployment,
    blueprint,
    indexer: settled.indexer.store,
    rewards: settled.store,
    paywall: market.paywall,
  })
  await api.start()
  return {
    api,
    providerStore: market.store,
    paywall: market.paywall,
    async stop() {
      await api.stop()
      await market.stop()
    },
  }
}
