/**
 * The fuzz harness: `npm run fuzz -- [--inputs 20000] [--seed S] [--shards 2] [--max-seconds 5400]
 * [--in-process 0] [--sockets 16] [--only gateway-http,gateway-mqtt,api,exchange,decoder]`.
 *
 * Throws generated inputs, most of them near-valid, at every door a depin node opens to others:
 * the gateway's `POST /v1/readings` (HTTP) and reading topic (MQTT, through an in-process aedes
 * broker), the API's query routes, the validators' report exchange, and the batch decoder
 * (in-process). Each shard (a child process, one per core by default, seed S + its index) starts
 * its own servers on 127.0.0.1, with in-process stores and registries (no chain). It prints a
 * progress line every 5 s and the figures at the end, and exits 1 when a figure that must be 0 is
 * not, printing the first inputs behind it. `--in-process P` sends a share P of the HTTP inputs
 * through fastify's `inject` (the same routes and handlers, no socket). Targets: scripts/fuzz/.
 */
import { fork } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { runShard, type ShardOptions, type ShardProgress, type ShardResult } from './fuzz/runShard.ts'
import { type Figure, MUST_BE_ZERO, type Offender, TARGETS, type Target } from './fuzz/tally.ts'

type Options = {
  inputs: number
  seed: number
  shards: number
  maxSeconds: number
  inProcess: number
  sockets: number
  /** Only these targets get inputs (all by default). */
  only: Target[]
}

function parseOptions(argv: readonly string[]): Options & { shardOf?: ShardOptions } {
  const options: Options = {
    inputs: 20_000,
    seed: Math.floor(Math.random() * 2 ** 31),
    shards: Math.min(2, availableParallelism()),
    maxSeconds: 5_400,
    inProcess: 0,
    sockets: 16,
    only: [...TARGETS],
  }
  const names: Record<string, Exclude<keyof Options, 'only'>> = {
    '--inputs': 'inputs',
    '--seed': 'seed',
    '--shards': 'shards',
    '--max-seconds': 'maxSeconds',
    '--in-process': 'inProcess',
    '--sockets': 'sockets',
  }
  let shardOf: ShardOptions | undefined
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') {
      options.only = String(argv[++i]).split(',') as Target[]
      if (options.only.some((t) => !TARGETS.includes(t))) {
        console.error(`--only takes a comma-separated list of ${TARGETS.join(', ')}`)
        process.exit(2)
      }
      continue
    }
    if (argv[i] === '--as-shard') {
      // internal: this process is one shard of a run, its options as JSON
      shardOf = JSON.parse(String(argv[++i])) as ShardOptions
      continue
    }
    const name = names[argv[i] as string]
    const value = Number(String(argv[i + 1]).replaceAll('_', ''))
    if (!name || !Number.isFinite(value) || value < 0) {
      console.error(
        `usage: npm run fuzz -- ${Object.keys(names)
          .map((n) => `[${n} N]`)
          .join(' ')} [--only ${TARGETS.join(',')}]`,
      )
      process.exit(2)
    }
    options[name] = value
    i++
  }
  if (options.inProcess > 1 || options.shards < 1 || !Number.isInteger(options.shards)) {
    console.error('--in-process is a share between 0 and 1; --shards a whole number from 1')
    process.exit(2)
  }
  return shardOf ? { ...options, shardOf } : options
}

const options = parseOptions(process.argv.slice(2))

if (options.shardOf) {
  // a shard: run, telling the parent the counts as they go and the result at the end
  const send = (message: unknown) => new Promise<void>((resolve) => process.send?.(message, () => resolve()))
  const result = await runShard(options.shardOf, (progress) => void send({ type: 'progress', progress }))
  await send({ type: 'result', result })
  process.exit(0)
}

const number = (n: number) => Math.round(n).toLocaleString('en-US')
const started = Date.now()
const elapsed = () => (Date.now() - started) / 1000
const deadline = started / 1000 + options.maxSeconds
const shardOptions: ShardOptions[] = Array.from({ length: options.shards }, (_, k) => ({
  inputs: Math.floor(options.inputs / options.shards) + (k < options.inputs % options.shards ? 1 : 0),
  seed: options.seed + k,
  deadline,
  inProcess: options.inProcess,
  sockets: options.sockets,
  only: options.only,
}))
const replay =
  `npm run fuzz -- --inputs ${options.inputs} --seed ${options.seed} --shards ${options.shards}` +
  `${options.inProcess > 0 ? ` --in-process ${options.inProcess}` : ''}` +
  `${options.only.length < TARGETS.length ? ` --only ${options.only.join(',')}` : ''}`
console.log(
  `fuzzing: ${replay}\n(${options.shards} shard${options.shards > 1 ? 's, each a process' : ''} with servers of its own on 127.0.0.1, seeds ${options.seed}…${options.seed + options.shards - 1})`,
)

const latest: ShardProgress[] = shardOptions.map(() => ({
  inputs: Object.fromEntries(TARGETS.map((t) => [t, 0])) as Record<Target, number>,
  figures: Object.fromEntries(Object.keys(MUST_BE_ZERO).map((f) => [f, 0])) as Record<Figure, number>,
}))

/** A shard that died before it reported: a crash, with what it had counted so far. */
const died = (k: number, why: string): ShardResult => ({
  ...(latest[k] as ShardProgress),
  figures: {
    ...(latest[k] as ShardProgress).figures,
    crashes: (latest[k] as ShardProgress).figures.crashes + 1,
  },
  notes: Object.fromEntries(TARGETS.map((t) => [t, []])) as unknown as ShardResult['notes'],
  offenders: [
    {
      figure: 'crashes',
      target: 'gateway-http',
      kind: `shard ${k}`,
      input: `seed ${options.seed + k}`,
      answer: why,
    },
  ],
  seconds: elapsed(),
  stoppedByTime: false,
})

function runInChild(k: number): Promise<ShardResult> {
  return new Promise((resolve) => {
    const child = fork(fileURLToPath(import.meta.url), ['--as-shard', JSON.stringify(shardOptions[k])], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let result: ShardResult | undefined
    child.on('message', (message: { type: string; progress?: ShardProgress; result?: ShardResult }) => {
      if (message.type === 'progress' && message.progress) latest[k] = message.progress
      if (message.type === 'result') result = message.result
    })
    child.on('exit', (code, signal) =>
      resolve(result ?? died(k, `exited with ${signal ?? `code ${code}`} before it reported its figures`)),
    )
  })
}

const figuresLine = (figures: Record<Figure, number>) =>
  `crashes ${figures.crashes}, 5xx ${figures.serverErrors}, forged accepted ${figures.acceptedForged}, ` +
  `untyped ${figures.untypedRefusals}, unanswered ${figures.transportErrors}, valid refused ${figures.validRefused}, ` +
  `decoder ${figures.decoderWrongError}/${figures.decoderNonCanonical}`
const sum = <K extends string>(records: readonly Record<K, number>[], keys: readonly K[]) =>
  Object.fromEntries(keys.map((key) => [key, records.reduce((n, r) => n + r[key], 0)])) as Record<K, number>
const figureNames = Object.keys(MUST_BE_ZERO) as Figure[]

const progress = setInterval(() => {
  const inputs = sum(
    latest.map((p) => p.inputs),
    TARGETS,
  )
  const total = TARGETS.reduce((n, t) => n + inputs[t], 0)
  const t = elapsed()
  console.log(
    `[${t.toFixed(0).padStart(5)} s] ${number(total)} inputs (${number(total / t)}/s) — ` +
      `${TARGETS.map((target) => `${target} ${number(inputs[target])}`).join(', ')} — must be 0: ${figuresLine(
        sum(
          latest.map((p) => p.figures),
          figureNames,
        ),
      )}`,
  )
}, 5_000)

const results: ShardResult[] =
  options.shards === 1
    ? [
        await runShard(shardOptions[0] as ShardOptions, (p) => {
          latest[0] = p
        }),
      ]
    : await Promise.all(shardOptions.map((_, k) => runInChild(k)))
clearInterval(progress)
const seconds = Math.max(...results.map((r) => r.seconds))

// ---- the figures ----
const inputs = sum(
  results.map((r) => r.inputs),
  TARGETS,
)
const figures = sum(
  results.map((r) => r.figures),
  figureNames,
)
const total = TARGETS.reduce((n, t) => n + inputs[t], 0)
console.log(
  `\n${number(total)} inputs in ${seconds.toFixed(1)} s: ${number(total / seconds)} inputs/s ` +
    `(${options.inProcess > 0 ? `${Math.round(options.inProcess * 100)} % of the HTTP inputs in-process through fastify inject` : 'every HTTP input over a loopback socket'}; ` +
    `the stores, boards and servers were checked after the run; ${elapsed().toFixed(0)} s in all)`,
)
if (results.some((r) => r.stoppedByTime))
  console.log(`stopped by --max-seconds ${options.maxSeconds} before every input was sent`)
for (const target of TARGETS) {
  const notes = new Map<string, number>()
  for (const r of results)
    for (const [note, n] of r.notes[target]) notes.set(note, (notes.get(note) ?? 0) + n)
  const sorted = [...notes].sort((a, b) => b[1] - a[1])
  console.log(`\n  ${target}: ${number(inputs[target])} inputs`)
  for (const [note, n] of sorted.slice(0, 18)) console.log(`    ${number(n).padStart(10)}  ${note}`)
  if (sorted.length > 18) console.log(`    … and ${sorted.length - 18} more kinds of answer`)
}
const noted = (note: string) =>
  results.reduce((n, r) => n + TARGETS.reduce((m, t) => m + (new Map(r.notes[t]).get(note) ?? 0), 0), 0)
console.log(
  `\n  counted apart: ${noted('429 (rate limited)')} answers 429 (the exchange's rate limits are set out of reach), ` +
    `${noted('503 BUSY (batches served at once, counted apart)')} answers 503 BUSY (the exchange serves 4 batches at once by design)`,
)
console.log('\n  must be 0:')
for (const figure of figureNames)
  console.log(`    ${String(figures[figure]).padStart(10)}  ${MUST_BE_ZERO[figure]}`)

const offenders: Offender[] = results.flatMap((r) => r.offenders)
if (offenders.length > 0) {
  console.log('\n  first offending inputs:')
  for (const o of offenders.slice(0, 40))
    console.log(`\n  [${o.figure}] ${o.target}, ${o.kind}\n    input:  ${o.input}\n    answer: ${o.answer}`)
}
const failed = figureNames.some((f) => figures[f] > 0)
console.log(`\n${failed ? 'FAILED' : 'OK'}: ${replay}`)
process.exit(failed ? 1 : 0)
