/**
 * The fuzz harness: `npm run fuzz -- [--inputs 20000] [--seed S] [--max-seconds 3600]
 * [--in-process 0] [--sockets 16] [--only gateway-http,gateway-mqtt,api,exchange,decoder]`.
 *
 * Throws generated inputs, most of them near-valid, at every door a depin node opens to others:
 * the gateway's `POST /v1/readings` (HTTP) and reading topic (MQTT, through an in-process aedes
 * broker), the API's query routes, the validators' report exchange, and the batch decoder
 * (in-process). It starts its own servers on 127.0.0.1, with in-process stores and registries (no
 * chain), prints a progress line every 5 s and its figures at the end, and exits 1 when a figure
 * that must be 0 is not, printing the first inputs behind it. `--in-process P` sends a share P of
 * the HTTP inputs through fastify's `inject` (the same routes and handlers, no socket).
 * Targets live in scripts/fuzz/.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadKeccak256 } from '../src/crypto/keccak.ts'
import { startApiFixture } from './fuzz/apiTarget.ts'
import { createDecoderFixture } from './fuzz/decoderTarget.ts'
import { startExchangeFixture } from './fuzz/exchangeTarget.ts'
import { startGatewayFixture } from './fuzz/gatewayTarget.ts'
import { createTally, MUST_BE_ZERO, TARGETS, type Target } from './fuzz/tally.ts'

/** Share of the inputs each target gets. */
const SHARES: Record<Target, number> = {
  'gateway-http': 0.3,
  'gateway-mqtt': 0.1,
  api: 0.22,
  exchange: 0.13,
  decoder: 0.25,
}

type Options = {
  inputs: number
  seed: number
  maxSeconds: number
  inProcess: number
  sockets: number
  /** Only these targets get inputs (all by default). */
  only: Target[]
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    inputs: 20_000,
    seed: Math.floor(Math.random() * 2 ** 31),
    maxSeconds: 3_600,
    inProcess: 0,
    sockets: 16,
    only: [...TARGETS],
  }
  const names: Record<string, Exclude<keyof Options, 'only'>> = {
    '--inputs': 'inputs',
    '--seed': 'seed',
    '--max-seconds': 'maxSeconds',
    '--in-process': 'inProcess',
    '--sockets': 'sockets',
  }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only') {
      options.only = String(argv[++i]).split(',') as Target[]
      if (options.only.some((t) => !TARGETS.includes(t))) {
        console.error(`--only takes a comma-separated list of ${TARGETS.join(', ')}`)
        process.exit(2)
      }
      continue
    }
    const name = names[argv[i] as string]
    const value = Number(String(argv[i + 1]).replaceAll('_', ''))
    if (!name || !Number.isFinite(value) || value < 0) {
      console.error(
        `usage: npm run fuzz -- ${Object.keys(names)
          .map((n) => `[${n} N]`)
          .join(' ')}`,
      )
      process.exit(2)
    }
    options[name] = value
    i++
  }
  if (options.inProcess > 1) {
    console.error('--in-process is a share, between 0 and 1')
    process.exit(2)
  }
  return options
}

const options = parseOptions(process.argv.slice(2))
const tally = createTally()
const started = performance.now()
const elapsed = () => (performance.now() - started) / 1000
const number = (n: number) => Math.round(n).toLocaleString('en-US')

// a crash anywhere in this process (the servers live in it) is a finding, not the end of the run
process.on('uncaughtException', (error) =>
  tally.flag('crashes', 'gateway-http', 'uncaught exception', '(see the stack)', error),
)
process.on('unhandledRejection', (error) =>
  tally.flag('crashes', 'gateway-http', 'unhandled rejection', '(see the stack)', error),
)

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'depin-fuzz-'))
const keccak = await loadKeccak256()
const common = {
  seed: options.seed,
  tally,
  inProcessShare: options.inProcess,
  sockets: options.sockets,
  keccak,
}
console.log(
  `fuzzing with --inputs ${options.inputs} --seed ${options.seed}` +
    `${options.inProcess > 0 ? ` --in-process ${options.inProcess}` : ''} (servers on 127.0.0.1, stores in ${dir})`,
)
const gateway = await startGatewayFixture({ ...common, dir })
const api = await startApiFixture({ ...common, dir })
const exchange = await startExchangeFixture(common)
const decoder = createDecoderFixture(common)

const shareSum = options.only.reduce((sum, t) => sum + SHARES[t], 0)
const quota = Object.fromEntries(
  TARGETS.map((t) => [t, options.only.includes(t) ? Math.round((options.inputs * SHARES[t]) / shareSum) : 0]),
) as Record<Target, number>
const timeUp = () => elapsed() > options.maxSeconds

/** Runs `workers` loops that each take the next input of `target` until its quota is spent. */
async function drive(target: Target, workers: number, input: () => Promise<void>) {
  let taken = 0
  const loop = async () => {
    while (taken < quota[target] && !timeUp()) {
      taken++
      tally.input(target)
      try {
        await input()
      } catch (error) {
        tally.flag('crashes', target, 'exception in the input loop', '(see the stack)', error)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, loop))
}

/** The decoder is synchronous: a slice of inputs at a time, then the event loop serves the sockets. */
async function driveDecoder() {
  while (tally.inputs.decoder < quota.decoder && !timeUp()) {
    const sliceEnd = Math.min(quota.decoder, tally.inputs.decoder + 50)
    while (tally.inputs.decoder < sliceEnd) {
      tally.input('decoder')
      try {
        decoder.input()
      } catch (error) {
        tally.flag('crashes', 'decoder', 'exception in the input loop', '(see the stack)', error)
      }
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
}

const figuresLine = () =>
  `crashes ${tally.figures.crashes}, 5xx ${tally.figures.serverErrors}, forged accepted ${tally.figures.acceptedForged}, ` +
  `untyped ${tally.figures.untypedRefusals}, unanswered ${tally.figures.transportErrors}, valid refused ${tally.figures.validRefused}, ` +
  `decoder ${tally.figures.decoderWrongError}/${tally.figures.decoderNonCanonical}`
const progress = setInterval(() => {
  const t = elapsed()
  console.log(
    `[${t.toFixed(0).padStart(5)} s] ${number(tally.total())} inputs (${number(tally.total() / t)}/s) — ` +
      `${TARGETS.map((target) => `${target} ${number(tally.inputs[target])}`).join(', ')} — must be 0: ${figuresLine()}`,
  )
}, 5_000)

await Promise.all([
  drive('gateway-http', options.sockets, gateway.httpInput),
  drive('gateway-mqtt', 32, gateway.mqttInput),
  drive('api', options.sockets, api.input),
  drive('exchange', options.sockets, exchange.input),
  driveDecoder(),
])
const seconds = elapsed()
clearInterval(progress)

console.log(`\nchecking the stores and boards, and that every server still answers …`)
await gateway.finish()
await api.finish()
await exchange.finish()
await gateway.stop()
await api.stop()
await exchange.stop()
rmSync(dir, { recursive: true, force: true })

// ---- the figures ----
const total = tally.total()
console.log(
  `\n${number(total)} inputs in ${seconds.toFixed(1)} s: ${number(total / seconds)} inputs/s ` +
    `(seed ${options.seed}${options.inProcess > 0 ? `, ${Math.round(options.inProcess * 100)} % of HTTP inputs in-process through fastify inject` : ', every HTTP input over a loopback socket'})`,
)
if (timeUp()) console.log(`stopped by --max-seconds ${options.maxSeconds} before every input was sent`)
for (const target of TARGETS) {
  const notes = [...tally.notes[target]].sort((a, b) => b[1] - a[1])
  console.log(`\n  ${target}: ${number(tally.inputs[target])} inputs`)
  for (const [note, n] of notes.slice(0, 18)) console.log(`    ${number(n).padStart(10)}  ${note}`)
  if (notes.length > 18) console.log(`    … and ${notes.length - 18} more kinds of answer`)
}
console.log('\n  must be 0:')
for (const [figure, what] of Object.entries(MUST_BE_ZERO))
  console.log(`    ${String(tally.figures[figure as keyof typeof MUST_BE_ZERO]).padStart(10)}  ${what}`)

if (tally.offenders.length > 0) {
  console.log('\n  first offending inputs:')
  for (const o of tally.offenders) {
    console.log(`\n  [${o.figure}] ${o.target}, ${o.kind}\n    input:  ${o.input}\n    answer: ${o.answer}`)
  }
}
const failed = tally.mustBeZeroTotal() > 0
console.log(
  `\n${failed ? 'FAILED' : 'OK'}: replay with npm run fuzz -- --inputs ${options.inputs} --seed ${options.seed}`,
)
process.exit(failed ? 1 : 0)
