/**
 * Runs one benchmark in a process of its own and prints its result as JSON, so that one part's
 * heap (a million readings) does not weigh on the next part's speed or peak memory.
 * `npx tsx bench/runPart.ts recover|ingest|ingestMqtt|ingestPostgres|judge|coverage|trees|paidReadings|bigNetwork [size]`
 */
import { benchBigNetwork } from './bigNetwork.ts'
import { benchCoverage } from './coverage.ts'
import { benchGatewayIngest } from './gatewayIngest.ts'
import { benchJudge, benchRecoverRate } from './judge.ts'
import { benchPaidReadings } from './paidReadings.ts'
import { benchRewardsTree } from './rewardsTree.ts'

const [part, size] = process.argv.slice(2)
const json = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v))
const parts: Record<string, () => Promise<unknown>> = {
  recover: () => benchRecoverRate(Number(size ?? 3)),
  ingest: () => benchGatewayIngest(Number(size ?? 60_000)),
  ingestMqtt: () => benchGatewayIngest(Number(size ?? 60_000), 500, 4, undefined, 'mqtt'),
  ingestPostgres: () => benchGatewayIngest(Number(size ?? 60_000), 500, 4, undefined, 'http', 'postgres'),
  judge: () => benchJudge(Number(size ?? 1_000_000)),
  coverage: () => benchCoverage(Number(size ?? 1_000_000)),
  trees: () => benchRewardsTree([Number(size ?? 1_000_000)]),
  paidReadings: () => benchPaidReadings(Number(size ?? 3_000)),
  bigNetwork: () => benchBigNetwork(Number(size ?? 10_000), Number(process.env.BENCH_BIG_EPOCHS ?? 10)),
}
const run = parts[part ?? '']
if (!run) {
  console.error(`usage: runPart.ts ${Object.keys(parts).join('|')} [size]`)
  process.exit(2)
}
console.log(json(await run()))
