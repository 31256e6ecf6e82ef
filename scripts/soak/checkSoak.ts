/**
 * The soak's verdict, computed after every process has stopped, from the files they left and the
 * chain's events: acknowledged readings lost, readings counted twice, epochs that failed to
 * settle while a quorum (and the gateway) was up, SQLite integrity of every store, slashings.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Deployment } from '../../src/chain/deployment.ts'
import { openGatewayStore } from '../../src/gateway/gatewayStore.ts'
import { createValidatorStore } from '../../src/validator/validatorStore.ts'
import type { ReadSettlementsReturnType } from './readSettlements.ts'
import type { UpSpan } from './roleProcess.ts'
import { readingKey, type SoakTransport } from './runSoakFleet.ts'
import { fewestUpBetween, intervalsWithAtLeast, upThroughout } from './upTimeline.ts'

/** Seconds past the last leader turn for the settling transaction to be mined and seen. */
const SETTLE_SLACK_SECONDS = 3
/** Leader turns an epoch may need: a dead leader's, then one killed in its own turn, then the next. */
const LEADER_TURNS = 3

export type CheckSoakParameters = {
  dir: string
  deployment: Deployment
  sealDelaySeconds: number
  agreementTimeoutMs: number
  gatewayWaitMs: number
  leaderTimeoutMs: number
  gatewaySpans: readonly UpSpan[]
  validatorSpans: readonly (readonly UpSpan[])[]
  /** Validators that must be up for an epoch to be expected to settle. */
  quorum: number
  /** Unix ms when every role was first up: epochs starting after it are checked. */
  checkFrom: number
  /** Unix ms of the orderly stop: epochs whose settling window ends before it are checked. */
  checkTo: number
  chain: ReadSettlementsReturnType
  acknowledged: ReadonlyMap<string, { transport: SoakTransport; epoch: bigint }>
  refused: ReadonlyMap<string, string>
}

/**
 * Settled epochs after a reading's own within which a late batch of it is expected to have counted
 * (the validators look for late batches at each epoch's agreement, LATE_BATCH_EPOCHS back): one not
 * judged by then is lost; one closer to the end is pending.
 */
const LATE_COUNT_EPOCHS = 3n

/** Up to this many examples of each failure are kept, for the report. */
const EXAMPLES = 10

/** Runs every check; each figure named `…Lost`, `…Twice`, `…Failed` must be 0. */
export async function checkSoak(parameters: CheckSoakParameters) {
  const { dir, deployment, chain } = parameters
  const { genesisTime, epochLength } = deployment
  const seconds = (ms: number) => Math.ceil(ms / 1000)
  // as the validator counts them: the gateway wait, then the rest of the agreement timeout
  const agreementTimeout = seconds(parameters.agreementTimeoutMs)
  const gatewayWait = seconds(parameters.gatewayWaitMs)
  const agreementWait = gatewayWait + agreementTimeout - Math.floor((agreementTimeout + 1) / 2)
  const endMs = (epoch: bigint) => Number(genesisTime + (epoch + 1n) * epochLength) * 1000
  const epochAt = (ms: number) => (BigInt(Math.floor(ms / 1000)) - genesisTime) / epochLength
  /** From the epoch's end until its last leader turn (plus slack) is over. */
  const settleWindow = (epoch: bigint) => ({
    from: endMs(epoch),
    to:
      endMs(epoch) +
      1000 *
        (parameters.sealDelaySeconds +
          agreementWait +
          LEADER_TURNS * seconds(parameters.leaderTimeoutMs) +
          SETTLE_SLACK_SECONDS),
  })
  /** From the epoch's seal until validators stop waiting for gateways: the gateway must answer in it. */
  const fetchWindow = (epoch: bigint) => ({
    from: endMs(epoch) + 1000 * parameters.sealDelaySeconds,
    to: endMs(epoch) + 1000 * (parameters.sealDelaySeconds + gatewayWait),
  })

  // 1. integrity first, before any store is opened by its own code
  const integrity = databaseFiles(dir).map((file) => {
    const db = new Database(file)
    try {
      return {
        file: file.slice(dir.length + 1),
        result: String(db.pragma('integrity_check', { simple: true })),
      }
    } finally {
      db.close()
    }
  })

  // 2. epochs that should have settled: their window inside a quorum-up and gateway-up interval
  const firstEpoch = epochAt(parameters.checkFrom) + 1n
  let lastEpoch = firstEpoch - 1n
  while (settleWindow(lastEpoch + 1n).to <= parameters.checkTo) lastEpoch++
  const expected: bigint[] = []
  const unsettledExpected: bigint[] = []
  /** The same without the gateway: validators judge without a gateway that is down, so these settle too. */
  const quorumOnly: bigint[] = []
  const unsettledQuorumOnly: bigint[] = []
  const unsettled: bigint[] = []
  for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
    const window = settleWindow(epoch)
    const settled = chain.settled.has(epoch)
    if (!settled) unsettled.push(epoch)
    if (fewestUpBetween(parameters.validatorSpans, window.from, window.to) < parameters.quorum) continue
    quorumOnly.push(epoch)
    if (!settled) unsettledQuorumOnly.push(epoch)
    if (!upThroughout(parameters.gatewaySpans, window.from, window.to)) continue
    expected.push(epoch)
    if (!settled) unsettledExpected.push(epoch)
  }
  const quorumTimeline = intervalsWithAtLeast(
    parameters.validatorSpans,
    parameters.quorum,
    parameters.checkFrom,
    parameters.checkTo,
  )

  // 3. the gateway's store: every acknowledged reading, once
  const gatewayStore = await openGatewayStore(join(dir, 'gateway', 'gateway.db'))
  const stored = new Map<string, { epoch: bigint; count: number }>()
  let storedRows = 0
  try {
    const newest = epochAt(Date.now()) + 1n
    for (let epoch = 0n; epoch <= newest; epoch++) {
      for (const r of await gatewayStore.epochReadings(epoch)) {
        const key = readingKey(r.device, r.seq)
        const seen = stored.get(key)
        stored.set(key, { epoch, count: (seen?.count ?? 0) + 1 })
        storedRows++
      }
    }
    // rows outside every epoch read above would hide from the count: the store's own total must match
    const rows = await gatewayStore.readingCount()
    if (rows !== storedRows) throw new Error(`gateway store holds ${rows} rows, ${storedRows} read by epoch`)
  } finally {
    await gatewayStore.close()
  }
  const storedTwice = [...stored].filter(([, s]) => s.count > 1).map(([key]) => key)

  // 4. for each settled epoch, the readings the validators judged: a store whose result is the settled one
  const validatorStores = parameters.validatorSpans.map((_, i) =>
    createValidatorStore(join(dir, `v${i}`, 'validator.db')),
  )
  /** Per reading: the settled epochs that judged it (its own, or a later one that counted it late). */
  const judgedIn = new Map<string, bigint[]>()
  const judged = new Set<bigint>()
  const acceptedIn = new Map<string, bigint[]>()
  const settledUnaccounted: bigint[] = []
  const acceptedMismatch: { epoch: bigint; chain: number; store: number }[] = []
  try {
    for (const [epoch, settlement] of chain.settled) {
      const store = validatorStores.find((s) => {
        const result = s.result(epoch)
        return (
          result?.report.readingsRoot === settlement.readingsRoot &&
          result.report.rewardsRoot === settlement.rewardsRoot
        )
      })
      if (!store) {
        settledUnaccounted.push(epoch)
        continue
      }
      const verdicts = store.verdicts(epoch)
      judged.add(epoch)
      for (const v of verdicts) {
        const key = readingKey(v.device, v.seq)
        judgedIn.set(key, [...(judgedIn.get(key) ?? []), epoch])
      }
      const accepted = verdicts.filter((v) => v.status === 'accepted')
      if (accepted.length !== settlement.accepted)
        acceptedMismatch.push({ epoch, chain: settlement.accepted, store: accepted.length })
      for (const v of accepted) {
        const key = readingKey(v.device, v.seq)
        acceptedIn.set(key, [...(acceptedIn.get(key) ?? []), epoch])
      }
    }
  } finally {
    for (const s of validatorStores) s.close()
  }
  const acceptedTwice = [...acceptedIn].filter(([, epochs]) => epochs.length > 1)

  // 5. every acknowledged reading: at the gateway, and judged in a settled epoch: its own, or a
  // later one that counted its batch late (the gateway sealed it after its epoch was agreed)
  const lastSettled = [...chain.settled.keys()].reduce((a, b) => (b > a ? b : a), -1n)
  const lostAtGateway: string[] = []
  /** Judged in a settled epoch after its own (a late batch). */
  let countedLate = 0
  /** Not judged yet, its epoch too close to the end for a late batch of it to have settled. */
  let pendingAtEnd = 0
  /** Stored, its epoch settled without it though the gateway was up while the validators fetched. */
  const lostInSettled: { key: string; epoch: bigint }[] = []
  /** The same, with the gateway down at some moment while the validators fetched the epoch's batch. */
  const leftOutGatewayDown: { key: string; epoch: bigint }[] = []
  let inUnsettledEpochs = 0
  for (const [key, ack] of parameters.acknowledged) {
    const at = stored.get(key)
    if (!at) {
      lostAtGateway.push(key)
      continue
    }
    const judgedAt = judgedIn.get(key)
    if (judgedAt) {
      if (judgedAt.some((e) => e > at.epoch)) countedLate++
      continue
    }
    if (lastSettled < at.epoch + LATE_COUNT_EPOCHS) {
      pendingAtEnd++
      continue
    }
    if (!chain.settled.has(at.epoch)) {
      inUnsettledEpochs++
      continue
    }
    if (!judged.has(at.epoch)) continue // settled, but no store accounts for it: counted in settledUnaccounted
    const window = fetchWindow(at.epoch)
    if (upThroughout(parameters.gatewaySpans, window.from, window.to))
      lostInSettled.push({ key, epoch: ack.epoch })
    else leftOutGatewayDown.push({ key, epoch: at.epoch })
  }
  const refusedButStored = [...parameters.refused].filter(([key]) => stored.has(key))

  return {
    integrity,
    integrityFailed: integrity.filter((i) => i.result !== 'ok').length,
    epochs: {
      first: firstEpoch,
      last: lastEpoch,
      settled: chain.settled.size,
      unsettled,
      expected,
      quorumOnly,
    },
    unsettledWhileQuorumUpFailed: unsettledExpected.length,
    unsettledExpected: unsettledExpected.slice(0, EXAMPLES),
    unsettledWhileQuorumOnlyFailed: unsettledQuorumOnly.length,
    unsettledQuorumOnly: unsettledQuorumOnly.slice(0, EXAMPLES),
    quorumTimeline,
    acknowledged: parameters.acknowledged.size,
    storedReadings: storedRows,
    /** Not in the gateway's store, or stored but not judged in its settled epoch, whatever the cause. */
    acknowledgedLost: lostAtGateway.length + lostInSettled.length + leftOutGatewayDown.length,
    lostAtGateway: lostAtGateway.length,
    lostAtGatewayExamples: lostAtGateway.slice(0, EXAMPLES),
    lostInSettled: lostInSettled.length,
    lostInSettledExamples: lostInSettled.slice(0, EXAMPLES),
    leftOutGatewayDownExamples: leftOutGatewayDown.slice(0, EXAMPLES),
    leftOutGatewayDown: leftOutGatewayDown.length,
    leftOutEpochs: [...new Set(leftOutGatewayDown.map((l) => l.epoch))],
    inUnsettledEpochs,
    countedLate,
    pendingAtEnd,
    refusedButStored: refusedButStored.length,
    refusedButStoredReasons: countBy(refusedButStored.map(([, reason]) => reason)),
    storedTwice: storedTwice.length,
    storedTwiceExamples: storedTwice.slice(0, EXAMPLES),
    acceptedTwice: acceptedTwice.length,
    acceptedTwiceExamples: acceptedTwice.slice(0, EXAMPLES),
    settledUnaccounted,
    acceptedMismatch,
    slashed: chain.slashed,
    inactive: chain.inactive,
  }
}
export type SoakFigures = Awaited<ReturnType<typeof checkSoak>>

/** Every SQLite file under `dir` (the WAL and shm files go with theirs). */
function databaseFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.db'))
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

const countBy = (values: readonly string[]) => {
  const counts: Record<string, number> = {}
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1
  return counts
}
