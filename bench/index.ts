/**
 * `npm run bench`: the speed figures of the issue, measured in one run and printed as ratios
 * against the first line (the machine is shared and noisy, so ratios compare better than
 * absolute rates). With --write-readme it replaces the table between the bench markers in
 * README.md. Sizes can be lowered for a quick look: BENCH_JUDGE_READINGS, BENCH_INGEST_READINGS,
 * BENCH_COVERAGE_WITNESSES, BENCH_PAID_REQUESTS (timed requests of each mode of line 5; the store's
 * epochs hold BENCH_PAID_EPOCH_READINGS readings each), BENCH_BIG_STATIONS and BENCH_BIG_EPOCHS
 * (line 6: the embedded network's fleet and the epochs watched; 0 stations leaves it out).
 */
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { promisify } from 'node:util'
import type { BigNetworkResult } from './bigNetwork.ts'
import type { BenchCoverageResult } from './coverage.ts'
import type { GatewayIngestResult } from './gatewayIngest.ts'
import type { BenchJudgeResult } from './judge.ts'
import type { BenchPaidReadingsResult } from './paidReadings.ts'

const run = promisify(execFile)
/** One part in a fresh process (see runPart.ts). */
const part = async <T>(name: string, size: number): Promise<T> =>
  JSON.parse(
    (
      await run('node', ['--expose-gc', '--import', 'tsx', 'bench/runPart.ts', name, String(size)], {
        maxBuffer: 1 << 24,
      })
    ).stdout,
  ) as T
const cores = availableParallelism()
const judgeReadings = Number(process.env.BENCH_JUDGE_READINGS ?? 1_000_000)
const ingestReadings = Number(process.env.BENCH_INGEST_READINGS ?? 120_000)
const coverageWitnesses = Number(process.env.BENCH_COVERAGE_WITNESSES ?? 1_000_000)
const paidRequests = Number(process.env.BENCH_PAID_REQUESTS ?? 3_000)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const step = (line: string) => console.error(`… ${line}`)

/**
 * Line 1, raw recovery on every core at once. The machine's speed drifts over a run of many
 * minutes, so it is measured at the start, between the judging parts and at the end, and every
 * ratio is to the mean (the spread is printed with it).
 */
const limits: number[] = []
const measureLimit = async (when: string): Promise<void> => {
  step(`raw signature recovery on ${cores} cores (one process per core), ${when}`)
  const rates = await Promise.all(Array.from({ length: cores }, () => part<number>('recover', 3)))
  limits.push(rates.reduce((a, b) => a + b, 0))
}
await measureLimit('first of three')

step(`gateway ingest of ${fmt(ingestReadings)} readings over HTTP`)
const ingest = await part<GatewayIngestResult>('ingest', ingestReadings)
step(`gateway ingest of ${fmt(ingestReadings)} readings through the embedded MQTT broker`)
const ingestMqtt = await part<GatewayIngestResult>('ingestMqtt', ingestReadings)
step(`gateway ingest of ${fmt(ingestReadings)} readings over HTTP into PostgreSQL (POSTGRES_URL)`)
const ingestPostgres = await part<GatewayIngestResult>('ingestPostgres', ingestReadings)

step(`validator judging ${fmt(judgeReadings)} readings (signing them first, cached in /tmp)`)
const judge = await part<BenchJudgeResult>('judge', judgeReadings)
const judgeRate = judge.readingsPerSecond
await measureLimit('second of three')

step(
  `connectivity judging ${fmt(coverageWitnesses)} signed witness records (signing them first, cached in /tmp)`,
)
const coverage = await part<BenchCoverageResult>('coverage', coverageWitnesses)
await measureLimit('third of three')
const limit = limits.reduce((a, b) => a + b, 0) / limits.length

step('settlement: rewards tree and every proof for 10,000 / 100,000 / 1,000,000 devices')
type TreeResult = { leaves: number; buildSeconds: number; proofsSeconds: number; peakRssMB: number }
const trees: TreeResult[] = []
for (const size of [10_000, 100_000, 1_000_000]) trees.push(...(await part<TreeResult[]>('trees', size)))

step(`the API's readings, paid and free: ${fmt(paidRequests)} requests of each, interleaved`)
const paid = await part<BenchPaidReadingsResult>('paidReadings', paidRequests)

const bigStations = Number(process.env.BENCH_BIG_STATIONS ?? 10_000)
let big: BigNetworkResult | undefined
if (bigStations > 0) {
  step(`the embedded network (depin up) with ${fmt(bigStations)} stations: registration, then ten epochs`)
  big = await part<BigNetworkResult>('bigNetwork', bigStations)
}

const rows = [
  [
    '1. signature recovery, libsecp256k1, all cores (the limit; mean of 3 measurements over the run)',
    `${fmt(limit)} /s (${fmt(Math.min(...limits))}–${fmt(Math.max(...limits))})`,
    '1.00',
  ],
  [
    `2. gateway ingest: HTTP batches of 500, every check, SQLite (synchronous FULL), ack`,
    `${fmt(ingest.perSecond)} /s`,
    (ingest.perSecond / limit).toFixed(2),
  ],
  [
    `2b. the same through MQTT (embedded broker, QoS 1, one message at a time, answered once durable)`,
    `${fmt(ingestMqtt.perSecond)} /s`,
    (ingestMqtt.perSecond / limit).toFixed(2),
  ],
  [
    `2c. the same as line 2 into PostgreSQL (one INSERT … unnest per batch, synchronous commit)`,
    `${fmt(ingestPostgres.perSecond)} /s`,
    `${(ingestPostgres.perSecond / limit).toFixed(2)} (${(ingestPostgres.perSecond / ingest.perSecond).toFixed(2)} of line 2)`,
  ],
  [
    `3. validator judging ${fmt(judge.readings)} readings: re-verify, rules, both roots, rewards`,
    `${fmt(judgeRate)} /s`,
    (judgeRate / limit).toFixed(2),
  ],
  [
    `3b. connectivity judging ${fmt(coverage.witnesses)} witness records (and ${fmt(coverage.beacons)} beacons): re-verify, every proof-of-coverage rule, both roots, rewards`,
    `${fmt(coverage.perSecond)} /s`,
    (coverage.perSecond / limit).toFixed(2),
  ],
  ...trees.map((t) => [
    `4. settle ${fmt(t.leaves)} devices: rewards tree + every proof`,
    `${(t.buildSeconds + t.proofsSeconds).toFixed(2)} s, ${t.peakRssMB} MB peak`,
    '',
  ]),
  [
    `5. API: GET /v1/readings, ${paid.readingsPerAnswer} readings with their proofs each (${fmt(paid.answerKB)} KB; epochs of ${fmt(paid.epochReadings)} readings), no paywall, ${paid.clients} clients over loopback`,
    `${fmt(paid.free.perSecond)} /s`,
    '',
  ],
  [
    `5b. the same paid: a signed-in consumer (SIWE), a fresh X-PAYMENT voucher each (checked, recovered), the answer recorded in the provider's SQLite (synchronous FULL) before it is sent`,
    `${fmt(paid.paid.perSecond)} /s`,
    `${paid.ratio.toFixed(2)} of line 5`,
  ],
  ...(big
    ? [
        [
          `6. depin up with ${fmt(big.stations)} stations: the fleet registered (registerMany, 100 a transaction, proofs signed on worker threads)`,
          `${fmt(big.registrationPerSecond)} devices/s`,
          '',
        ],
        [
          `6b. the same: share of the honest stations' readings accepted, each of ${big.epochs.length} epochs (${fmt(Math.min(...big.epochs.map((e) => e.sent)))}–${fmt(Math.max(...big.epochs.map((e) => e.sent)))} sent an epoch)`,
          `${(100 * big.worstShare).toFixed(2)} % at worst`,
          '',
        ],
      ]
    : []),
]
const table = [
  '| measurement | figure | ratio to line 1 |',
  '| --- | ---: | ---: |',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n')
console.log(table)
console.log(
  `\ncoverage detail: ${coverage.seconds.toFixed(2)} s, ${fmt(coverage.accepted)} records accepted; peak RSS ${coverage.peakRssMB} MB`,
)
console.log(
  `\npaid readings detail: ${fmt(paid.free.requests)} requests of each mode; the server's main thread spent ${fmt(paid.free.serverMicros)} µs on a free request, ${fmt(paid.paid.serverMicros)} µs on a paid one (event-loop active time); store of ${fmt(paid.storeReadings)} readings, proofs of ${paid.proofLengths.join('–')} hashes`,
)
console.log(
  `\njudge detail: ${judge.threads} threads; signatures ${judge.phases.signaturesSeconds.toFixed(2)} s, rules ${judge.phases.rulesSeconds.toFixed(2)} s, ordering ${judge.phases.orderSeconds.toFixed(2)} s, rewards ${judge.rewardsSeconds.toFixed(2)} s; peak RSS ${judge.peakRssMB} MB`,
)

if (process.argv.includes('--write-readme')) {
  const readme = readFileSync('README.md', 'utf8')
  const marked = /<!-- bench:start -->[\s\S]*<!-- bench:end -->/
  if (!marked.test(readme))
    throw new Error('README.md has no <!-- bench:start --> … <!-- bench:end --> markers')
  const stamp = `Measured by \`npm run bench -- --write-readme\` on ${new Date().toISOString().slice(0, 10)}, ${cores} cores, Node ${process.version}. The gas of settling does not depend on the number of devices or readings: see the gas table.`
  writeFileSync(
    'README.md',
    readme.replace(marked, `<!-- bench:start -->\n${stamp}\n\n${table}\n<!-- bench:end -->`),
  )
  console.error('updated README.md')
}
