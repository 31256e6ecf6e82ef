/**
 * `npm run soak -- [--minutes 5] [--kills K] [--stations 16] [--seed S] [--keep]`: a soak of the
 * whole network on this machine (127.0.0.1 only, everything in a temp dir): anvil, the contracts,
 * an MQTT broker (embedded aedes, or `MQTT_URL`), a gateway process and 4 validator processes
 * (quorum 3), a simulated fleet sending over HTTP and MQTT, short epochs. While it runs, the
 * gateway and the validators are SIGKILLed at random moments (about K in all, default 8 a
 * minute) and restarted after a short random delay, never more than one validator down at a
 * time. A progress line every 30 s. At the end it stops everything and checks, from the stores
 * the processes left and the chain's events, that no acknowledged reading was lost, none counted
 * twice, every epoch settled that ended while a quorum and the gateway were up, every SQLite
 * store passes `PRAGMA integrity_check`, and nobody was slashed. Exit 0 when every figure is
 * 0 / ok, else 1 (the temp dir, with every process's log, is kept then).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { checkSoak, type SoakFigures } from './soak/checkSoak.ts'
import { readSettlements, settledEpochCount } from './soak/readSettlements.ts'
import type { RoleProcess } from './soak/roleProcess.ts'
import { type KillRecord, runKillSchedule } from './soak/runKillSchedule.ts'
import { runSoakFleet } from './soak/runSoakFleet.ts'
import {
  AGREEMENT_TIMEOUT_MS,
  GATEWAY_WAIT_MS,
  LEADER_TIMEOUT_MS,
  startSoakNetwork,
} from './soak/startSoakNetwork.ts'

const VALIDATORS = 4
const QUORUM = 3
const PROGRESS_MS = 30_000
const READING_INTERVAL_MS = 2_000
/** A killed process is restarted after a delay drawn from this range (ms). */
const RESTART_DELAY_MS = [300, 2_000] as const
/**
 * Of the gateway's kills, this share keeps it down for longer (ms): past the validators' gateway
 * wait across a seal, so its batch of that epoch is sealed late and must count in a later one.
 */
const LONG_OUTAGE = { share: 0.2, delayMs: [8_000, 16_000] } as const

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    kills: { type: 'string' },
    stations: { type: 'string', default: '16' },
    seed: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
})
const minutes = Number(args.minutes)
const kills = args.kills === undefined ? Math.round(minutes * 8) : Number(args.kills)
const stations = Number(args.stations)
const seed = args.seed === undefined ? Date.now() % 2 ** 31 : Number(args.seed)
for (const [name, value] of Object.entries({ minutes, kills, stations, seed })) {
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`)
}

const started = Date.now()
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s`
const say = (line: string) => console.log(`[${elapsed()}] ${line}`)
const fmt = (n: number | bigint) => n.toLocaleString('en-US')
const git = (...a: string[]) => {
  try {
    return execFileSync('git', a, { encoding: 'utf8' }).trimEnd()
  } catch {
    return '?'
  }
}

const dir = mkdtempSync(join(tmpdir(), 'depin-soak-'))
const dirty = git('status', '--short', '--', 'src', 'contracts').split('\n').filter(Boolean)
say(
  `soak: ${minutes} min, ${kills} kills, ${VALIDATORS} validators (quorum ${QUORUM}), 1 gateway, ${stations} stations, seed ${seed}`,
)
say(
  `code: ${git('rev-parse', '--short', 'HEAD')}${dirty.length ? ` with uncommitted changes in ${dirty.length} files of src/ (${dirty.map((l) => l.slice(3)).join(', ')})` : ''}`,
)
say(`data, configs and every process's log: ${dir}`)

let networkUp = false
let stopping = false
let stopEarly = false
const unexpectedRestarts: Promise<void>[] = []
const restartFailures: { role: string; error: string }[] = []
// Ctrl-C (or a SIGTERM) ends the kills early; the soak still stops everything in order and checks
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopEarly) return
    say(`${signal}: ending the kills early, then stopping and checking`)
    stopEarly = true
  })
}

const network = await startSoakNetwork({
  dir,
  stations,
  validators: VALIDATORS,
  fleetSeed: seed,
  // a process that dies by itself is a finding: it is recorded, and restarted so the soak goes on
  onUnexpectedExit: (role) => {
    if (stopping || !networkUp) return
    say(`${role.name} exited by itself (${JSON.stringify(role.unexpectedExits().at(-1))}); restarting it`)
    unexpectedRestarts.push(restartUntilUp(role))
  },
})
async function restartUntilUp(role: RoleProcess): Promise<void> {
  for (let attempt = 0; attempt < 5 && !stopping; attempt++) {
    try {
      if (!role.isUp()) await role.start()
      return
    } catch (error) {
      restartFailures.push({ role: role.name, error: String(error) })
      await role.kill()
    }
  }
}
networkUp = true
const { deployment, blueprint, admin } = network
say(`network up: anvil ${network.anvil.rpcUrl}, gateway ${network.gatewayUrl}, broker ${network.brokerUrl}`)

const fleet = runSoakFleet({
  fleet: network.fleet,
  deployment,
  gatewayUrl: network.gatewayUrl,
  gatewayId: network.gatewayId,
  brokerUrl: network.brokerUrl,
  topicPrefix: network.topicPrefix,
  intervalMs: READING_INTERVAL_MS,
  timeoutMs: 3_000,
})

const killed: KillRecord[] = []
const killCount = (kind: string) => killed.filter((k) => k.kind === kind).length
let settledSoFar = 0
const progress = async () => {
  settledSoFar = await settledEpochCount(admin.publicClient, deployment).catch(() => settledSoFar)
  const down = network.roles.filter((r) => !r.isUp()).map((r) => r.name)
  say(
    `kills ${killed.length} (gateway ${killCount('gateway')}, validators ${killCount('validator')}), ` +
      `epochs settled ${settledSoFar}, readings acknowledged ${fmt(fleet.acknowledged.size)} ` +
      `(http ${fmt(fleet.countBy('http'))}, mqtt ${fmt(fleet.countBy('mqtt'))}), queued ${fleet.queued()}` +
      (down.length ? `, down: ${down.join(' ')}` : ''),
  )
}
// Warm-up: the faults start once every validator has judged an epoch. A validator with an empty
// store starts at the running epoch (a newcomer), which is what test/validator/validatorSetChanges
// tests; killed before its first epoch again and again, it would be a newcomer at every start.
const warmUpDeadline = Date.now() + 120_000
while (!network.validators.every((v) => v.eventCount('epoch_judged') > 0)) {
  if (Date.now() > warmUpDeadline) throw new Error('the validators did not judge a first epoch within 120 s')
  await new Promise((resolve) => setTimeout(resolve, 250))
}
const allUpAt = Date.now()
say('every validator judged an epoch: the kills begin')
const progressTimer = setInterval(() => void progress(), PROGRESS_MS)

const killUntil = allUpAt + minutes * 60_000
const kills_ = await runKillSchedule({
  gateway: network.gateway,
  validators: network.validators,
  kills,
  until: () => (stopEarly ? Date.now() : killUntil),
  seed,
  gatewayShare: 0.3,
  restartDelayMs: RESTART_DELAY_MS,
  gatewayOutage: LONG_OUTAGE,
  onKill: (k) => killed.push(k),
  onRestartFailed: (role, error) => {
    restartFailures.push({ role: role.name, error: error instanceof Error ? error.message : String(error) })
    say(`${role.name} failed to restart: ${error instanceof Error ? error.message : String(error)}`)
  },
})
const killsOverAt = Date.now()
await Promise.all(unexpectedRestarts)
say(`kills over: ${kills_.length}; every process is up again; stopping the load, draining the queues`)

// the end: no new readings, the queues delivered, the last epochs with readings settled
await fleet.stop()
const leftQueued = await fleet.drain(Date.now() + 60_000)
const lastAckedEpoch = [...fleet.acknowledged.values()].reduce((m, a) => (a.epoch > m ? a.epoch : m), 0n)
const lastEnd = Number(deployment.genesisTime + (lastAckedEpoch + 1n) * deployment.epochLength) * 1000
const settleBy = lastEnd + 60_000
say(`waiting for epoch ${lastAckedEpoch} (the last with acknowledged readings) to settle`)
for (;;) {
  const chain = await readSettlements(admin.publicClient, deployment, [])
  if ([...chain.settled.keys()].some((e) => e >= lastAckedEpoch) || Date.now() > settleBy) break
  await new Promise((resolve) => setTimeout(resolve, 1_000))
}
clearInterval(progressTimer)
await progress()

// stop every process cleanly, then read the chain, then stop the chain
const checkTo = Date.now()
stopping = true
const stops = await Promise.all(network.roles.map(async (r) => ({ role: r.name, ...(await r.stop()) })))
const unclean = stops.filter((s) => !s.clean).map((s) => s.role)
const chain = await readSettlements(admin.publicClient, deployment, network.validatorAddresses)
await fleet.close()
await network.stop()

const figures = await checkSoak({
  dir,
  deployment,
  sealDelaySeconds: blueprint.epochs.sealDelaySeconds,
  agreementTimeoutMs: AGREEMENT_TIMEOUT_MS,
  gatewayWaitMs: GATEWAY_WAIT_MS,
  leaderTimeoutMs: LEADER_TIMEOUT_MS,
  gatewaySpans: network.gateway.spans(),
  validatorSpans: network.validators.map((v) => v.spans()),
  quorum: QUORUM,
  checkFrom: allUpAt,
  checkTo,
  chain,
  acknowledged: fleet.acknowledged,
  refused: fleet.refused,
})
// the record behind the figures, for a look at what happened when (kept with the logs)
writeFileSync(
  join(dir, 'soak.json'),
  JSON.stringify(
    {
      seed,
      allUpAt,
      checkTo,
      kills: killed,
      spans: Object.fromEntries(network.roles.map((r) => [r.name, r.spans()])),
      settled: [...chain.settled.values()],
      figures,
    },
    (_, v) => (typeof v === 'bigint' ? v.toString() : v),
    1,
  ),
)
const failed = report(figures)
if (failed === 0 && !args.keep) rmSync(dir, { recursive: true, force: true })
else say(`kept ${dir}`)
process.exit(failed === 0 ? 0 : 1)

/** Prints the figures; returns how many checks failed. */
function report(f: SoakFigures): number {
  const soakSeconds = (checkTo - allUpAt) / 1000
  const unexpected = network.roles.flatMap((r) => r.unexpectedExits().map((e) => ({ role: r.name, ...e })))
  const perValidator = network.validators.map(
    (v) => `${v.name} ${killed.filter((k) => k.role === v.name).length}`,
  )
  const gatewayUpMs = network.gateway
    .spans()
    .reduce((sum, s) => sum + Math.min(s.to ?? checkTo, checkTo) - Math.max(s.from, allUpAt), 0)
  /** How many times the validators logged an event, all together. */
  const events = (name: string) => network.validators.reduce((n, v) => n + v.eventCount(name), 0)
  const refusedSigning = events('signing_refused')
  const submitted = network.validators.map((v) => `${v.name} ${v.eventCount('report_submitted')}`)
  console.log('')
  console.log(
    `soak: npm run soak -- --minutes ${minutes} --kills ${kills} --stations ${stations} --seed ${seed}: ` +
      `${((Math.min(killsOverAt, killUntil) - allUpAt) / 60_000).toFixed(1)} min of kills, ${(soakSeconds / 60).toFixed(1)} min in all under load`,
  )
  console.log(
    `kills: ${killed.length} (gateway ${killCount('gateway')}, validators ${killCount('validator')}: ${perValidator.join(', ')}), all SIGKILL, ${killed.filter((k) => k.duringStart).length} of them while the process was still starting after its previous kill; each restarted after ${RESTART_DELAY_MS[0] / 1000}–${RESTART_DELAY_MS[1] / 1000} s, but ${killed.filter((k) => k.long).length} of the gateway's after ${LONG_OUTAGE.delayMs[0] / 1000}–${LONG_OUTAGE.delayMs[1] / 1000} s (longer than the validators wait for it)`,
  )
  const startup = (kind: string) => {
    const times = network.roles.filter((r) => r.kind === kind).flatMap((r) => r.startTimes().slice(1))
    if (times.length === 0) return 'none'
    const mean = times.reduce((a, b) => a + b, 0) / times.length
    return `mean ${(mean / 1000).toFixed(1)} s, max ${(Math.max(...times) / 1000).toFixed(1)} s`
  }
  console.log(`restart to started line: gateway ${startup('gateway')}; validators ${startup('validator')}`)
  console.log(
    `uptime: fewer than ${QUORUM} validators up for ${(f.quorumTimeline.shortMs / 1000).toFixed(1)} s ` +
      `(${f.quorumTimeline.intervals.length} quorum-up interval(s)); gateway up ${((100 * gatewayUpMs) / (checkTo - allUpAt)).toFixed(1)} % of the time`,
  )
  console.log(
    `epochs: ${fmt(f.epochs.settled)} settled; of epochs ${f.epochs.first}–${f.epochs.last} (${fmt(Number(f.epochs.last - f.epochs.first + 1n))}), ` +
      `${fmt(f.epochs.quorumOnly.length)} ended while a quorum was up, ${fmt(f.epochs.expected.length)} of them with the gateway up too (their settling window, ` +
      `end + seal + agreement + ${3} leader turns, inside it), ${fmt(f.epochs.unsettled.length)} did not settle in all` +
      (f.epochs.unsettled.length
        ? ` (${f.epochs.unsettled.slice(0, 20).join(', ')}${f.epochs.unsettled.length > 20 ? ', …' : ''})`
        : ''),
  )
  console.log(
    `submissions: ${submitted.join(', ')}; signings refused by slashing protection: ${refusedSigning}; ` +
      `epochs judged with late batches: ${events('late_batches')} (over all validators), abstained for a late input not held: ${events('late_input_unknown')}`,
  )
  console.log(
    `readings: ${fmt(f.acknowledged)} acknowledged (http ${fmt(fleet.countBy('http'))}, mqtt ${fmt(fleet.countBy('mqtt'))}), ` +
      `${fmt(fleet.signed())} signed, ${fmt(f.storedReadings)} stored by the gateway, ${leftQueued} still queued at the end`,
  )
  console.log(
    `  lost: ${fmt(f.lostAtGateway)} acknowledged readings not in the gateway's store; ` +
      `${fmt(f.lostInSettled)} stored but left out of their settled epoch while the gateway was up; ` +
      `${fmt(f.leftOutGatewayDown)} stored but left out of ${f.leftOutEpochs.length} settled epoch(s) ` +
      `whose batch the gateway sealed while it was down or restarting as the validators fetched it${f.leftOutEpochs.length ? ` (epochs ${f.leftOutEpochs.slice(0, 15).join(', ')}${f.leftOutEpochs.length > 15 ? ', …' : ''})` : ''}`,
  )
  for (const epoch of f.leftOutEpochs.slice(0, 5)) console.log(`    epoch ${epoch}: ${gatewayStory(epoch)}`)
  console.log(
    `  ${fmt(f.countedLate)} acknowledged readings counted late (their gateway sealed their batch after their epoch was agreed); ` +
      `${fmt(f.inUnsettledEpochs)} in epochs that never settled and not counted later; ${fmt(f.pendingAtEnd)} in the last epochs, not judged yet`,
  )
  console.log(
    `  ${fmt(f.refusedButStored)} readings refused to a device that the gateway had stored from an earlier delivery ${JSON.stringify(f.refusedButStoredReasons)}`,
  )
  if (fleet.errors.size) console.log(`  fleet errors: ${JSON.stringify(Object.fromEntries(fleet.errors))}`)

  const checks: [string, number | string, boolean][] = [
    [
      'acknowledged readings lost (not stored, or judged in no settled epoch)',
      f.acknowledgedLost,
      f.acknowledgedLost === 0,
    ],
    ['readings stored twice by the gateway', f.storedTwice, f.storedTwice === 0],
    ['readings accepted in two settled epochs', f.acceptedTwice, f.acceptedTwice === 0],
    [
      'epochs unsettled while a quorum and the gateway were up',
      f.unsettledWhileQuorumUpFailed,
      f.unsettledWhileQuorumUpFailed === 0,
    ],
    [
      'epochs unsettled while a quorum was up, the gateway up or not',
      f.unsettledWhileQuorumOnlyFailed,
      f.unsettledWhileQuorumOnlyFailed === 0,
    ],
    [
      `SQLite integrity_check of ${f.integrity.length} stores`,
      f.integrityFailed === 0 ? 'ok' : `${f.integrityFailed} not ok`,
      f.integrityFailed === 0,
    ],
    ['validators slashed', f.slashed.length + f.inactive.length, f.slashed.length + f.inactive.length === 0],
    [
      'settled epochs no validator store accounts for',
      f.settledUnaccounted.length,
      f.settledUnaccounted.length === 0,
    ],
    [
      "settled epochs whose accepted count differs from the store's",
      f.acceptedMismatch.length,
      f.acceptedMismatch.length === 0,
    ],
    ['processes that exited by themselves', unexpected.length, unexpected.length === 0],
    ['restarts that did not come up', restartFailures.length, restartFailures.length === 0],
    ['processes that did not stop on SIGTERM', unclean.length, unclean.length === 0],
  ]
  console.log('checks (each must be 0 / ok):')
  for (const [name, value, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name}: ${value}`)

  // the evidence of each failure
  const details: [boolean, string, unknown][] = [
    [f.lostAtGateway > 0, 'acknowledged but not in the gateway store', f.lostAtGatewayExamples],
    [
      f.lostInSettled > 0,
      'acknowledged, stored, not judged in its settled epoch, the gateway up',
      f.lostInSettledExamples,
    ],
    [
      f.leftOutGatewayDown > 0,
      'acknowledged, stored, not judged in its settled epoch, the gateway down as it was fetched',
      f.leftOutGatewayDownExamples,
    ],
    [f.storedTwice > 0, 'stored twice', f.storedTwiceExamples],
    [f.acceptedTwice > 0, 'accepted in two epochs', f.acceptedTwiceExamples],
    [f.integrityFailed > 0, 'integrity', f.integrity.filter((i) => i.result !== 'ok')],
    [f.slashed.length + f.inactive.length > 0, 'slashed', { slashed: f.slashed, inactive: f.inactive }],
    [
      f.settledUnaccounted.length > 0,
      'settled epochs without a matching validator result',
      f.settledUnaccounted,
    ],
    [f.acceptedMismatch.length > 0, 'accepted counts', f.acceptedMismatch],
    [unexpected.length > 0, 'unexpected exits', unexpected],
    [restartFailures.length > 0, 'failed restarts', restartFailures],
    [unclean.length > 0, 'did not stop on SIGTERM', unclean],
  ]
  for (const [show, what, value] of details)
    if (show)
      console.log(`  ${what}: ${JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`)
  for (const epoch of f.unsettledQuorumOnly)
    console.log(`  epoch ${epoch} did not settle: ${epochStory(epoch)}`)
  const failures = checks.filter(([, , ok]) => !ok).length
  console.log(failures === 0 ? 'soak: PASS' : `soak: FAIL (${failures} checks)`)
  return failures
}

/** What happened around an epoch: the kills from its start to the end of its settling window. */
function epochStory(epoch: bigint): string {
  const start = Number(deployment.genesisTime + epoch * deployment.epochLength) * 1000
  const end = start + Number(deployment.epochLength) * 1000
  const around = killed
    .filter((k) => k.at >= start - 10_000 && k.at <= end + 20_000)
    .map((k) => {
      const back =
        k.restartedAt === undefined
          ? 'killed again while starting'
          : `back at end${signed((k.restartedAt - end) / 1000)} s`
      return `${k.role} killed${k.duringStart ? ' while starting' : ''} at end${signed((k.at - end) / 1000)} s, ${back}`
    })
  return around.length ? around.join('; ') : 'no kill near it'
}
/** When the gateway was down around an epoch's seal (times relative to the epoch's end). */
function gatewayStory(epoch: bigint): string {
  const end = Number(deployment.genesisTime + (epoch + 1n) * deployment.epochLength) * 1000
  const spans = network.gateway.spans()
  const gaps = spans
    .slice(1)
    .map((s, i) => ({ from: spans[i]?.to ?? s.from, to: s.from }))
    .filter((g) => g.to >= end - 5_000 && g.from <= end + 10_000)
  const sealed = network.gateway.lastEvents('epoch_sealed').find((e) => String(e.epoch) === String(epoch))
  return (
    gaps
      .map(
        (g) =>
          `gateway down from end${signed((g.from - end) / 1000)} s to end${signed((g.to - end) / 1000)} s`,
      )
      .join('; ') +
    (sealed ? `, sealed at end${signed((Date.parse(String(sealed.time)) - end) / 1000)} s` : '')
  )
}
function signed(s: number) {
  return `${s >= 0 ? '+' : ''}${s.toFixed(1)}`
}
