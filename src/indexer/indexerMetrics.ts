import { runningEpoch } from '../chain/deployment.ts'
import type { Metrics } from '../protocol/metrics.ts'
import type { IndexerStore } from './indexerStore.ts'

/**
 * The chain as a process's indexer sees it, set at each scrape: the last block processed, the last
 * epoch settled on-chain, and the epoch lag: epochs closed by the clock and not settled yet (0 until
 * the first epoch settles; 1 is normal while the last closed epoch is being agreed on).
 */
export function registerIndexerMetrics(
  metrics: Metrics,
  store: IndexerStore,
  epochs: { genesisTime: bigint; epochLength: bigint },
  clock: () => bigint = () => BigInt(Math.floor(Date.now() / 1000)),
): void {
  metrics.gauge('depin_indexer_block', 'Last block the indexer processed', [], (gauge) => {
    const last = store.lastProcessed()
    if (last) gauge.set(Number(last.block))
  })
  metrics.gauge('depin_settled_epoch', 'Last epoch settled on-chain, as indexed', [], (gauge) => {
    const settled = store.epochs(1)[0]
    if (settled) gauge.set(Number(settled.epoch))
  })
  metrics.gauge(
    'depin_epoch_lag',
    'Epochs closed by the clock and not settled on-chain yet, as indexed (0 before the first settlement)',
    [],
    (gauge) => {
      const settled = store.epochs(1)[0]
      const closed = runningEpoch(clock(), epochs) - 1n
      gauge.set(settled && closed > settled.epoch ? Number(closed - settled.epoch) : 0)
    },
  )
}
