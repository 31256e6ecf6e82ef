import { availableParallelism } from 'node:os'
import {
  type Account,
  type Address,
  BaseError,
  bytesToHex,
  ContractFunctionRevertedError,
  encodeFunctionData,
  type Hex,
} from 'viem'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import { checkRules } from '../chain/checkRules.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import { type Deployment, runningEpoch } from '../chain/deployment.ts'
import { type EpochRandomness, epochRandomness } from '../chain/epochRandomness.ts'
import { epochManagerAbi } from '../chain/generated/contracts.ts'
import { getContracts } from '../chain/getContracts.ts'
import {
  hashEpochReport,
  orderSignatures,
  recoverReportSigner,
  signEpochReport,
} from '../chain/signEpochReport.ts'
import { openTxJournal } from '../chain/txJournal.ts'
import {
  type EpochReport,
  type EpochReportJson,
  epochReportFromJson,
  epochReportToJson,
} from '../chain/typedData.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { Indexer } from '../indexer/createIndexer.ts'
import { registerIndexerMetrics } from '../indexer/indexerMetrics.ts'
import type { DeviceRecord, EpochRecord } from '../indexer/indexerStore.ts'
import { type CheckedServedBundle, decodeServedBundle, isServedBundle } from '../market/servedBundle.ts'
import type { Context } from '../protocol/context.ts'
import { createMetrics, type Metrics } from '../protocol/metrics.ts'
import { createReadingHasher } from '../readings/createReadingHasher.ts'
import { INT64_MAX, type SignedReading } from '../readings/reading.ts'
import { recoverSigner } from '../readings/recoverReadingSigner.ts'
import { encodeEpochRecord } from '../rewards/epochRecord.ts'
import { useCaseOf } from '../usecases/registry.ts'
import {
  agreedBatches,
  announcersAmong,
  canonicalBatchList,
  hashBatchSet,
  MAX_BATCHES_PER_SET,
  signBatchSet,
} from './batchSets.ts'
import type { ReportEquivocation } from './createHttpReportExchange.ts'
import {
  type BatchEpochs,
  type CheckedBatch,
  checkBatch,
  fetchBatchByHash,
  fetchGatewayBatch,
  fetchGatewayBatchHash,
  mergeBatches,
} from './epochBatches.ts'
import { computeEpochRewards, rewardsRootOf } from './judge/computeEpochRewards.ts'
import { createSignatureCheckPool, type SignatureCheckPool } from './judge/createSignatureCheckPool.ts'
import { epochReceipts } from './judge/epochReceipts.ts'
import { type JudgeEpochInput, type JudgeEpochResult, judgeEpoch } from './judge/judgeEpoch.ts'
import { judgeEpochInParallel } from './judge/judgeEpochInParallel.ts'
import { dropCountedBefore, LATE_BATCH_EPOCHS, lateEpochsOf, ownEpochReadings } from './lateBatches.ts'
import type { PeerRefusal, PublishOutcome, ReportExchange, SignedEpochReport } from './reportExchange.ts'
import { openSlashingProtection, type SigningRecord, type SignOnceResult } from './slashingProtection.ts'
import { fetchServedBundle, redemptionsOf, usageFees } from './usageFees.ts'
import { createValidatorStore, type EpochResult } from './validatorStore.ts'

/**
 * The steps of judging an epoch, in order, each a point where the process may die: `judged`
 * (report computed, nothing recorded), `recorded` (the digest about to be signed is on disk),
 * `signed` (signature made and recorded, result not saved), `saved` (result saved, not yet
 * published), `published`. The same for the batch set: `batchSetRecorded`, `batchSetSigned`.
 */
export type ValidatorStep =
  | 'batchSetRecorded'
  | 'batchSetSigned'
  | 'judged'
  | 'recorded'
  | 'signed'
  /** A leader's report transaction sent, its receipt not yet read. */
  | 'submissionSent'
  | 'saved'
  | 'published'

export type CreateValidatorOptions = {
  blueprint: Blueprint
  deployment: Deployment
  /** This validator's chain clients: its wallet signs reports and submits them. */
  clients: ChainClients
  /** This validator's own indexer (its own view of the chain). */
  indexer: Indexer
  /** This validator's own SQLite file. */
  dbPath: string
  exchange: ReportExchange
  /**
   * Milliseconds after an epoch is sealed for agreeing on its batches (default 4,000): the first
   * half for gateways that have not answered, then up to the whole for every active validator's
   * batch set. Whoever is still silent then is left out.
   */
  agreementTimeoutMs?: number
  /**
   * Milliseconds after an epoch is sealed that a listed gateway which has not answered is waited
   * for (default: half the agreement timeout). Its readings are left out of the epoch after that,
   * so a gateway restarting after a crash should fit in it. A longer wait moves the batch-set
   * deadline (and the leaders' turns) back by as much; when every gateway answers, nobody waits.
   */
  gatewayWaitMs?: number
  /** Worker threads for signature checks of large epochs (default: the machine's parallelism; 0: none). */
  signatureThreads?: number
  /** Readings from which an epoch's signatures are checked on the worker threads (default 20,000). */
  parallelJudgeFrom?: number
  /** The first epoch to judge (default: the epoch running at start, for a validator with an empty store). */
  firstEpoch?: bigint
  /** Milliseconds a leader has before the next validator in order takes over (default 10,000). */
  leaderTimeoutMs?: number
  tickMs?: number
  /** Unix seconds; defaults to the system clock. */
  clock?: () => bigint
  onJudged?: (result: EpochResult & { judgedReadings: number }) => void
  /** A gateway sent a batch that is not what it claims to be (it is left out for the epoch). */
  onGatewayInvalid?: (event: { epoch: bigint; gateway: Address; url: string; reason: string }) => void
  /** The amounts a settled epoch left were taken from a peer (checked against the settled root). */
  onBaseAdopted?: (event: { epoch: bigint; accounts: number }) => void
  /**
   * Batches of earlier epochs counted in this one (a gateway sealed them after their epoch was
   * agreed without them; see lateBatches.ts): how many, their readings, and of those the ones
   * dropped because a settled epoch accepted their device's readings of the same epoch.
   * `abstained` when this validator does not hold the settled accepted readings it must check
   * them against (it signs nothing for the epoch).
   */
  onLateBatches?: (event: {
    epoch: bigint
    batches: number
    oldest: bigint
    readings: number
    dropped: number
    abstained: boolean
  }) => void
  /**
   * Usage fees the epoch credits (see usageFees.ts): redemptions, their amount, the readings they
   * paid for and those proven; `abstained` when this validator lacks a settled result it must
   * check served readings against (it signs nothing for the epoch).
   */
  onUsageFees?: (event: {
    epoch: bigint
    redemptions: number
    amount: bigint
    paidReadings: bigint
    provenReadings: bigint
    unshown: number
    abstained: boolean
  }) => void
  /** A provider's served bundle is not what the chain says it must be (it is left out). */
  onProviderInvalid?: (event: { epoch: bigint; provider: Address; url: string; reason: string }) => void
  /** A batch that counts was missing here and came from a peer validator or a gateway, by content address. */
  onBatchRecovered?: (event: { epoch: bigint; hash: Hex; from: 'peer' | 'gateway' }) => void
  onSubmitted?: (event: { epoch: bigint; txHash: Hex; signers: number; active: number }) => void
  /**
   * Slashing protection refused to sign: a different digest was recorded for the epoch (or it lies
   * below an imported watermark). A refused report: the validator signs nothing new for that epoch
   * and moves on. A refused batch set: it announces none for the epoch, and still judges it.
   */
  onSigningRefused?: (event: {
    epoch: bigint
    kind: 'report' | 'batchSet'
    code: string
    digest: Hex
    recorded: Hex | null
  }) => void
  /** Peers that answered but did not keep one of this validator's own items (a loud condition). */
  onOwnItemRefused?: (event: { epoch: bigint; kind: 'report' | 'batchSet'; refusals: PeerRefusal[] }) => void
  /** Signed items of earlier epochs published again after a restart. */
  onRepublished?: (event: { epoch: bigint; kind: 'report' | 'batchSet' }) => void
  /** Called at each step of judging an epoch (fault-injection tests kill the process there). */
  onStep?: (step: ValidatorStep, epoch: bigint) => void | Promise<void>
  /** Called after this validator proved an equivocation on-chain. */
  onEquivocationProven?: (event: { validator: Address; epoch: bigint; txHash: Hex }) => void
  onError?: (error: unknown) => void
  /** A report transaction recorded before a restart went out again (the same bytes). */
  onResent?: (event: { key: string; hash: Hex }) => void
  /** The highest max fee per gas its transactions pay, wei (default: none). */
  maxFeePerGas?: bigint
  /** The process's context: without `onError`, failures are reported through it (VALIDATOR_TICK_FAILED). */
  context?: Context
  /** Where its metrics go (default: the context's, else its own). */
  metrics?: Metrics
}

export type Validator = {
  readonly address: Address
  start(): Promise<void>
  stop(): Promise<void>
  /** Runs one round: judge the next epoch if ready, submit pending reports if leading. */
  tick(): Promise<void>
  readonly store: ReturnType<typeof createValidatorStore>
}

/** An epoch's agreed input: the merged readings, the batches that count, and how many of them are late. */
type AgreedInput = {
  readings: SignedReading[]
  batchHashes: Hex[]
  late: number
  oldest: bigint
  /** The served bundles that count (usage fees). */
  bundles: CheckedServedBundle[]
}

/** Epochs of sealed batches a validator keeps for its peers. */
const KEEP_BATCH_EPOCHS = 64n
/** Epochs whose signed items a restarted validator publishes again. */
const REPUBLISH_EPOCHS = 4n

const systemClock = () => BigInt(Math.floor(Date.now() / 1000))

/** The custom error a contract call reverted with, if it did. */
function revertName(error: unknown): string | undefined {
  const revert =
    error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null
  return revert instanceof ContractFunctionRevertedError ? revert.data?.errorName : undefined
}

/**
 * A validator node. Per closed epoch it agrees with its peers on the input: it fetches the sealed
 * batch of every gateway on the registry's list (checking its content address), announces the
 * batches it holds, and judges the union of those at least f + 1 active validators announced,
 * fetching any it lacks from a peer (see batchSets.ts). It re-verifies every signature itself,
 * judges the readings by the blueprint's quality rules against the registry as of the epoch's
 * end, computes rewards on top of the cumulative amounts of the last epoch settled before this
 * one (once the previous epoch settled or its settlement deadline passed), signs the report,
 * and publishes it. The leader of an epoch (rotating over the active set by address; the next
 * one takes over after `leaderTimeoutMs`) submits once a quorum signed the same report.
 * Everything that decides the report is integer math over chain data and content-addressed
 * batches, so honest validators agree bit for bit.
 */
export async function createValidator(options: CreateValidatorOptions): Promise<Validator> {
  const { blueprint, deployment, clients, indexer, exchange } = options
  const account = clients.account as Account
  if (!account || !clients.walletClient)
    throw new DepinError('VALIDATOR_KEY_MISSING', 'a validator needs its own key')
  const clock = options.clock ?? systemClock
  const keccak = await loadKeccak256()
  const metrics = options.metrics ?? options.context?.metrics ?? createMetrics('validator')
  const judgeSeconds = metrics.histogram(
    'depin_validator_judge_seconds',
    'Time to judge an epoch (rules and signatures)',
  )
  const judgedReadings = metrics.counter(
    'depin_validator_readings_judged_total',
    'Readings judged, by verdict (accepted or the rejection reason)',
    ['verdict'],
  )
  const reportsSubmitted = metrics.counter(
    'depin_validator_reports_submitted_total',
    'Epoch reports this validator submitted on-chain',
  )
  registerIndexerMetrics(metrics, indexer.store, deployment, clock)
  const { recordKinds, countsLateRecords = false } = useCaseOf(blueprint)
  const digest = await createReadingHasher(
    deployment.chainId,
    deployment.contracts.deviceRegistry,
    recordKinds,
  )
  const store = createValidatorStore(options.dbPath)
  // what this validator signed, fsynced before each signature (a table of its own in the same file)
  const protection = openSlashingProtection(options.dbPath, {
    chainId: deployment.chainId,
    epochManager: deployment.contracts.epochManager,
    validator: account.address,
  })
  const step = async (name: ValidatorStep, epoch: bigint) => options.onStep?.(name, epoch)
  const contracts = getContracts(clients, deployment)
  // reports go out through the pending-transaction journal (a table of its own in the same file):
  // signed and recorded before they are sent, so a crash never loses nor doubles a submission
  const journal = openTxJournal(options.dbPath, clients as Parameters<typeof openTxJournal>[1], {
    ...(options.maxFeePerGas !== undefined ? { maxFeePerGas: options.maxFeePerGas } : {}),
    onResent: (entry) => options.onResent?.({ key: entry.key, hash: entry.hash }),
  })
  // rules pinned on-chain: a validator running other rules stops here, naming both hashes, instead
  // of signing reports nobody else signs (and the EpochManager would refuse)
  await checkRules(clients, deployment, blueprint).catch((error: unknown) => {
    store.close()
    protection.close()
    journal.close()
    throw error
  })
  const { genesisTime, epochLength } = deployment
  const sealDelay = BigInt(blueprint.epochs.sealDelaySeconds)
  const leaderTimeout = BigInt(Math.ceil((options.leaderTimeoutMs ?? 10_000) / 1000))
  const agreementTimeout = BigInt(Math.ceil((options.agreementTimeoutMs ?? 4_000) / 1000))
  const defaultGatewayWait = (agreementTimeout + 1n) / 2n
  const gatewayWait =
    options.gatewayWaitMs === undefined ? defaultGatewayWait : BigInt(Math.ceil(options.gatewayWaitMs / 1000))
  /** Seconds after the seal until the batch-set round ends and the leaders' turns begin. */
  const agreementWait = gatewayWait + agreementTimeout - defaultGatewayWait
  /** The first second at which the EpochManager refuses an epoch's report: the end of the epoch after next. */
  const settlementDeadline = (epoch: bigint) => epochStart(epoch + 3n)
  // the protocol's account for usage fees: immutable in the DataMarket, read once
  let treasuryAddress: Address | undefined
  const treasury = async (): Promise<Address> => {
    treasuryAddress ??= await contracts.dataMarket.read.treasury()
    return treasuryAddress
  }
  const asking = { headers: { 'x-depin-validator': account.address } }
  exchange.serveBatches((hash) => store.batch(hash))
  exchange.serveCumulative((epoch) => {
    const own = store.result(epoch)
    const settled = indexer.store.getEpoch(epoch)
    if (own && (!settled || settled.rewardsRoot === own.report.rewardsRoot)) return own.cumulative
    return store.adoptedCumulative(epoch)
  })
  // a settled epoch's record, for roles serving epochs without this store: only an epoch this
  // validator judged as the chain settled it (all three roots), the last few kept encoded
  const records = new Map<bigint, Uint8Array>()
  if ('serveEpochRecords' in exchange && typeof exchange.serveEpochRecords === 'function') {
    ;(
      exchange as { serveEpochRecords(source: (epoch: bigint) => Uint8Array | undefined): void }
    ).serveEpochRecords((epoch) => {
      const cached = records.get(epoch)
      if (cached) return cached
      const own = store.result(epoch)
      const settled = indexer.store.getEpoch(epoch)
      if (
        !own ||
        !settled ||
        settled.readingsRoot !== own.report.readingsRoot ||
        settled.receiptsRoot !== own.report.receiptsRoot ||
        settled.rewardsRoot !== own.report.rewardsRoot
      )
        return undefined
      const readings = store
        .acceptedReadings({ from: 0n, to: INT64_MAX, epoch, limit: Number.MAX_SAFE_INTEGER })
        .map((a) => a.reading)
      const bytes = encodeEpochRecord(
        {
          epoch,
          readings,
          receipts: store.receipts(epoch),
          cumulative: own.cumulative,
          usageFees: store.usageFeesOf(epoch),
        },
        recordKinds,
      )
      records.set(epoch, bytes)
      for (const old of records.keys()) if (records.size > 4) records.delete(old)
      return bytes
    })
  }
  const isAuthentic = (reading: SignedReading) => {
    const signer = recoverSigner(keccak, digest(reading), reading.signature)
    return signer.type === 'recovered' && signer.address === reading.device.toLowerCase()
  }
  /**
   * An epoch's validators: those active at its end, lower-case, ascending. The same for everyone
   * however late each judges (the indexer's history of the set), so the batch threshold and the
   * leaders' order never depend on when a validator looked.
   */
  const validatorsOf = (epoch: bigint): string[] => indexer.store.activeValidatorsAt(epochStart(epoch + 1n))
  /** Validators active now: only their signatures count on-chain. */
  const activeNow = () =>
    new Set(
      indexer.store
        .validators()
        .filter((v) => v.status === 'active')
        .map((v) => v.validator.toLowerCase()),
    )
  const epochStart = (epoch: bigint) => genesisTime + epoch * epochLength
  let firstEpoch = options.firstEpoch
  if (firstEpoch === undefined && store.lastJudgedEpoch() === undefined) {
    const now = clock()
    firstEpoch = runningEpoch(now, deployment)
  }
  const submitted = new Set<bigint>()
  /** Epoch randomness, computed once per epoch (from the chain's blocks and the indexer's reports). */
  const randomness = new Map<bigint, EpochRandomness>()
  async function randomnessOf(epoch: bigint): Promise<EpochRandomness | undefined> {
    const known = randomness.get(epoch)
    if (known) return known
    const computed = await epochRandomness({
      publicClient: clients.publicClient,
      deployment,
      rulesHash: blueprint.rulesHash,
      epoch,
      fromBlock: randomness.get(epoch - 1n)?.block.number,
      lastReportBefore: (time) => indexer.store.epochs().find((e) => e.timestamp < time),
    })
    if (computed) {
      randomness.set(epoch, computed)
      for (const old of randomness.keys()) if (old < epoch - 8n) randomness.delete(old)
    }
    return computed
  }

  /** Tells of a signature slashing protection refused: what was asked, and what is on record. */
  function reportRefusal(
    kind: 'report' | 'batchSet',
    epoch: bigint,
    digest: Hex,
    refusal: Extract<SignOnceResult, { type: 'refused' }>,
  ): void {
    options.onSigningRefused?.({
      epoch,
      kind,
      code: refusal.code,
      digest,
      recorded: refusal.recorded?.digest ?? null,
    })
  }

  /** Publishes one of this validator's items and says so loudly when a peer did not keep it. */
  async function publishOwn(
    kind: 'report' | 'batchSet',
    epoch: bigint,
    send: () => Promise<PublishOutcome>,
  ): Promise<void> {
    const outcome = await send()
    if (outcome.refusals.length > 0) options.onOwnItemRefused?.({ epoch, kind, refusals: outcome.refusals })
  }

  /** Publishes again an item this validator signed earlier (its record holds what and the signature). */
  async function republish(record: SigningRecord): Promise<void> {
    if (!record.signature || record.body === '') return // imported, or never signed: nothing to send
    if (record.kind === 'report') {
      const { report } = JSON.parse(record.body) as { report: EpochReportJson }
      const signed: SignedEpochReport = {
        epoch: record.epoch,
        report: epochReportFromJson(report),
        digest: record.digest,
        signer: account.address,
        signature: record.signature,
      }
      await publishOwn('report', record.epoch, () => exchange.publish(signed))
    } else {
      const { batches } = JSON.parse(record.body) as { batches: Hex[] }
      await publishOwn('batchSet', record.epoch, () =>
        exchange.announceBatches({
          epoch: record.epoch,
          batches,
          signer: account.address,
          signature: record.signature as Hex,
        }),
      )
    }
    options.onRepublished?.({ epoch: record.epoch, kind: record.kind })
  }

  /** After a restart: what it signed for the recent epochs goes out again (peers' boards are in memory). */
  let republished = false
  async function republishRecent(): Promise<void> {
    if (republished) return
    republished = true
    const now = clock()
    const current = runningEpoch(now, deployment)
    for (const record of protection.recordsSince(current - REPUBLISH_EPOCHS)) await republish(record)
  }

  async function judgeNext(): Promise<void> {
    const last = store.lastJudgedEpoch()
    const next = last === undefined ? (firstEpoch ?? 0n) : last + 1n
    // After downtime, skip to the oldest epoch that can still settle (its deadline, the end of the
    // epoch after next, still ahead): older ones are work nobody could submit. Its base is final
    // at once (the epoch before it is past its deadline), so every validator back from an outage
    // lands on the same epoch and can judge it right away, whenever it looks.
    const now = clock()
    const oldestSettleable = runningEpoch(now, deployment) - 2n
    const epoch = next < oldestSettleable ? oldestSettleable : next
    const end = epochStart(epoch + 1n)
    if (now < end + sealDelay) return
    const lastProcessed = indexer.store.lastProcessed()
    if (!lastProcessed || lastProcessed.timestamp < end) return // registry state at the epoch's end not final yet
    const readings = await agreeOnReadings(epoch, end)
    if (!readings) return
    // Build on the last epoch settled before this one: final once the previous epoch settled or
    // can no longer settle (its deadline passed on-chain), since epochs settle in increasing order.
    // Until then, wait: the previous one may still settle, and its rewards must not be left out.
    if (epoch > 0n && !indexer.store.getEpoch(epoch - 1n)) {
      const seen = indexer.store.lastProcessed()
      if (!seen || seen.timestamp < settlementDeadline(epoch - 1n)) return
    }

    const devices = new Map<string, DeviceRecord>(
      indexer.store.devicesAt(end).map((d) => [d.device.toLowerCase(), d]),
    )
    const base = indexer.store.epochs().find((e) => e.epoch < epoch)
    const previousCumulative = base ? await settledCumulative(base) : new Map<string, bigint>()
    const randomness = await randomnessOf(epoch)
    if (!randomness) return // no block at or after its start yet (cannot be: it ended; asked again)
    const input = withoutCountedBefore(epoch, readings)
    if (!input) return
    // usage fees: the redemptions since the last settled epoch, split over their proven readings
    const fees = usageFees({
      blueprint,
      indexer: indexer.store,
      keccak,
      from: base ? epochStart(base.epoch + 1n) : 0n,
      to: end,
      windowOf,
      bundles: readings.bundles,
      treasury: await treasury(),
      ownerOf: (device) => devices.get(device.toLowerCase())?.owner,
      acceptedDevice: (e, d) => store.acceptedDevice(e, d),
      ownReadingsRoot: (e) => store.judgedOn(e)?.readingsRoot,
      settled: (e) => indexer.store.getEpoch(e),
    })
    if (fees.type === 'unknown') {
      store.abstain(epoch, 'SERVED_INPUT_UNKNOWN')
      options.onUsageFees?.({
        epoch,
        redemptions: 0,
        amount: 0n,
        paidReadings: 0n,
        provenReadings: 0n,
        unshown: 0,
        abstained: true,
      })
      return
    }
    if (fees.redemptions > 0)
      options.onUsageFees?.({
        epoch,
        redemptions: fees.redemptions,
        amount: fees.total,
        paidReadings: fees.paidReadings,
        provenReadings: fees.provenReadings,
        unshown: fees.unshown,
        abstained: false,
      })
    const stopTimer = judgeSeconds.startTimer()
    const judged = await judge({
      blueprint,
      epoch,
      epochStart: epochStart(epoch),
      // widened back to the oldest late batch's epoch (see lateBatches.ts)
      recordsFrom: epochStart(readings.oldest),
      epochEnd: end,
      randomness: randomness.value,
      network: { chainId: deployment.chainId, deviceRegistry: deployment.contracts.deviceRegistry },
      readings: input,
      devices,
      digest,
      keccak,
    })
    stopTimer()
    judgedReadings.inc({ verdict: 'accepted' }, judged.accepted)
    for (const [reason, count] of Object.entries(judged.rejectedByReason))
      if (count > 0) judgedReadings.inc({ verdict: reason }, count)
    const rewards = computeEpochRewards({
      blueprint,
      epoch,
      scores: judged.devices,
      previousSigners: base?.signers ?? [],
      previousCumulative,
      fees: fees.credits,
    })
    const { receipts, receiptsRoot } = epochReceipts({
      epoch,
      useCase: useCaseOf(blueprint),
      scores: judged.devices,
      rewards,
      keccak,
    })
    const report: EpochReport = {
      epoch,
      rulesHash: blueprint.rulesHash,
      readingsRoot: judged.readingsRoot,
      rewardsRoot: rewards.rewardsRoot,
      receiptsRoot,
      total: rewards.total,
      accepted: judged.accepted,
    }
    const reportDigest = hashEpochReport(deployment.chainId, deployment.contracts.epochManager, report)
    await step('judged', epoch)
    // slashing protection: the digest is on disk before the signature exists; a different one
    // recorded for this epoch (a crash after signing, then other inputs) is never signed
    const signing = await protection.signOnce(
      'report',
      epoch,
      reportDigest,
      JSON.stringify({ report: epochReportToJson(report), batchHashes: readings.batchHashes }),
      async () => {
        await step('recorded', epoch)
        return (
          await signEpochReport({
            account,
            chainId: deployment.chainId,
            epochManager: deployment.contracts.epochManager,
            report,
          })
        ).signature
      },
    )
    if (signing.type === 'refused') {
      reportRefusal('report', epoch, reportDigest, signing)
      store.abstain(epoch, signing.code)
      if (signing.recorded?.signature) await republish(signing.recorded) // what it did sign stands
      return
    }
    await step('signed', epoch)
    const result: EpochResult = {
      epoch,
      report,
      digest: reportDigest,
      signature: signing.signature,
      cumulative: rewards.cumulative,
      rejectedByReason: judged.rejectedByReason,
      batchHashes: readings.batchHashes,
    }
    // saved before it is published: a crash after publishing can no longer lose the result
    store.saveResult(
      result,
      judged.judged.map((j) => ({
        device: j.reading.device.toLowerCase(),
        seq: j.reading.seq,
        status: j.verdict.type,
        reason: j.verdict.type === 'rejected' ? j.verdict.reason : null,
      })),
      judged.judged
        .filter((j) => j.verdict.type === 'accepted')
        .map((j) => ({ reading: j.reading, digest: bytesToHex(j.digest) })),
      receipts,
      fees.byDevice,
    )
    await step('saved', epoch)
    await publishOwn('report', epoch, () =>
      exchange.publish({
        epoch,
        report,
        digest: reportDigest,
        signer: account.address,
        signature: signing.signature,
      }),
    )
    await step('published', epoch)
    options.onJudged?.({ ...result, judgedReadings: judged.judged.length })
  }

  /**
   * An input with late batches, without the late readings of a device whose readings of the same
   * epoch a settled epoch accepted; undefined (the validator abstains from the epoch) when it does
   * not hold a settled epoch's accepted readings it must check against: its own result for it
   * differs from the settled report, or it has none. Every epoch before this one is final here
   * (judging waited for the previous one to settle or expire).
   */
  function withoutCountedBefore(epoch: bigint, agreed: AgreedInput): SignedReading[] | undefined {
    if (agreed.oldest >= epoch) return agreed.readings
    const settled: bigint[] = []
    let known = true
    for (let e = agreed.oldest; e < epoch; e++) {
      const record = indexer.store.getEpoch(e)
      if (!record) continue // it did not settle: nothing of it counted
      const own = store.judgedOn(e)
      if (own?.readingsRoot !== record.readingsRoot || own.receiptsRoot !== record.receiptsRoot) known = false
      settled.push(e)
    }
    const late = agreed.readings.filter((r) => r.time < epochStart(epoch)).length
    const event = { epoch, batches: agreed.late, oldest: agreed.oldest, readings: late }
    if (!known) {
      store.abstain(epoch, 'LATE_INPUT_UNKNOWN')
      options.onLateBatches?.({ ...event, dropped: 0, abstained: true })
      return undefined
    }
    const kept = dropCountedBefore(
      agreed.readings,
      epochStart(epoch),
      (time) => runningEpoch(time, deployment),
      (device, e) => store.acceptedBetween(device, epochStart(e), epochStart(e + 1n), settled),
    )
    options.onLateBatches?.({ ...event, dropped: kept.dropped, abstained: false })
    return kept.readings
  }

  /**
   * The cumulative amounts after a settled epoch: this validator's own when it computed the
   * settled root, else a peer's whose rewards root is the settled one (a validator that joined
   * late, or judged that epoch differently, catches up this way instead of stalling).
   */
  async function settledCumulative(base: EpochRecord): Promise<ReadonlyMap<string, bigint>> {
    const own = store.result(base.epoch)
    if (own?.report.rewardsRoot === base.rewardsRoot) return own.cumulative
    const adopted = store.adoptedCumulative(base.epoch)
    if (adopted) return adopted
    const fetched = await exchange.fetchCumulative(
      base.epoch,
      (amounts) => rewardsRootOf(amounts) === base.rewardsRoot,
    )
    if (!fetched) {
      throw new DepinError(
        'VALIDATOR_BASE_UNKNOWN',
        `epoch ${base.epoch} settled with rewards root ${base.rewardsRoot}, which this validator ${own ? `computed as ${own.report.rewardsRoot}` : 'did not compute'}, and no peer has its amounts yet`,
        { retryable: true },
      )
    }
    store.adoptCumulative(base.epoch, fetched)
    options.onBaseAdopted?.({ epoch: base.epoch, accounts: fetched.size })
    return fetched
  }

  /**
   * Judges on this thread, or, from `parallelJudgeFrom` readings on, with the signatures checked
   * on worker threads: the same result bit for bit. The workers start at the first such epoch;
   * until they have loaded (seconds on a loaded machine, right after a restart) epochs are judged
   * on this thread, so a restarted validator is not late for the epoch it restarted in.
   */
  let pool: SignatureCheckPool | undefined
  async function judge(input: JudgeEpochInput): Promise<JudgeEpochResult> {
    const threads = options.signatureThreads ?? availableParallelism()
    if (threads < 1 || input.readings.length < (options.parallelJudgeFrom ?? 20_000)) return judgeEpoch(input)
    pool ??= createSignatureCheckPool({
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      kinds: recordKinds,
      threads,
    })
    return pool.isReady() ? judgeEpochInParallel(input, pool) : judgeEpoch(input)
  }

  /** The batches held for the epoch being agreed on, and how far the agreement got. */
  let gathering:
    | {
        epoch: bigint
        batches: Map<Hex, CheckedBatch>
        answered: Set<string>
        announced: boolean
        /** The batch list recorded for signing before a crash: the one announced, whatever came since. */
        recorded?: Hex[]
        /** The batches a report recorded before a crash was judged on: judged on again. */
        judgedOn?: Hex[]
        /** Late batches of earlier epochs looked for, in the background, from the start of the round. */
        late?: { done: boolean }
        /** Providers' served bundles held (usage fees), and their search in the background. */
        bundles: Map<Hex, CheckedServedBundle>
        bundleSearch?: { done: boolean }
      }
    | undefined

  /**
   * One step of agreeing on an epoch's readings; undefined until done. Fetches the batch of each
   * gateway listed at the epoch's end (until each answered, or half the agreement time), announces
   * the batches held, waits for every active validator's batch set (or the agreement time), then
   * fetches the batches that count and it lacks from a peer or a gateway, by content address.
   */
  async function agreeOnReadings(epoch: bigint, end: bigint): Promise<AgreedInput | undefined> {
    const sealedAt = end + sealDelay
    const gateways = indexer.store.gatewaysAt(end).filter((g) => /^https?:\/\//.test(g.url))
    if (gathering?.epoch !== epoch) {
      gathering = { epoch, batches: new Map(), answered: new Set(), announced: false, bundles: new Map() }
      // after a crash: the batch set already signed for this epoch stands (it is announced again),
      // and a report already recorded fixes the input it was judged on
      // (an imported record has no body: only its digest binds, through signOnce)
      const recordedSet = protection.record('batchSet', epoch)
      if (recordedSet?.body) {
        const { batches } = JSON.parse(recordedSet.body) as { batches: Hex[] }
        for (const hash of batches) {
          const bytes = store.batch(hash)
          if (bytes && isServedBundle(bytes))
            gathering.bundles.set(hash, decodeServedBundle(keccak, bytes, hash))
          else if (bytes)
            gathering.batches.set(hash, checkBatch(keccak, bytes, hash, batchEpochs(epoch), recordKinds))
        }
        if (recordedSet.signature) {
          gathering.announced = true
          await republish(recordedSet)
        } else gathering.recorded = batches // recorded, then the crash came before the signature
      }
      const recordedReport = protection.record('report', epoch)
      if (recordedReport?.body)
        gathering.judgedOn = (JSON.parse(recordedReport.body) as { batchHashes: Hex[] }).batchHashes
    }
    const held = gathering
    // a report recorded for this epoch fixes its input, on every tick until it is judged again
    if (held.judgedOn) {
      const inputs = await batchesByHash(epoch, held.judgedOn, held, gateways)
      if (!inputs) return undefined
      return {
        readings: mergeBatches(
          ownEpochReadings(epoch, inputs.batches, windowOf, countsLateRecords),
          isAuthentic,
        ),
        batchHashes: held.judgedOn,
        ...lateOf(epoch, inputs.batches),
        bundles: inputs.bundles,
      }
    }
    // so are the providers' served bundles (usage fees)
    if (!held.announced && !held.recorded && !held.bundleSearch) {
      const search = { done: false }
      held.bundleSearch = search
      void gatherServedBundles(epoch, held.bundles)
        .catch((error: unknown) => options.context?.report('SERVED_BUNDLES_FAILED', error))
        .finally(() => {
          search.done = true
        })
    }
    // late batches are looked for while the gateways are asked for this epoch's, within the same wait
    if (!held.announced && !held.recorded && !held.late && countsLateRecords) {
      const late = { done: false }
      held.late = late
      void gatherLateBatches(epoch, held.batches)
        .catch((error: unknown) => options.context?.report('LATE_BATCHES_FAILED', error))
        .finally(() => {
          late.done = true
        })
    }
    await Promise.all(
      gateways
        .filter((g) => !held.answered.has(g.url))
        .map(async (g) => {
          const result = await fetchGatewayBatch(keccak, g.url, epoch, { ...asking, kinds: recordKinds })
          if (result.type === 'unavailable') return
          held.answered.add(g.url)
          if (result.type === 'sealed') gatewayBatchHashes.set(`${epoch}:${g.url}`, result.batch.hash)
          if (result.type === 'invalid') {
            options.onGatewayInvalid?.({ epoch, gateway: g.gateway, url: g.url, reason: result.reason })
            return
          }
          held.batches.set(result.batch.hash, result.batch)
          store.saveBatch(result.batch)
        }),
    )
    if (!held.announced) {
      const waiting =
        held.answered.size < gateways.length ||
        (held.late !== undefined && !held.late.done) ||
        (held.bundleSearch !== undefined && !held.bundleSearch.done)
      if (waiting && clock() < sealedAt + gatewayWait) return undefined
      const batches = held.recorded ?? announcedList(epoch, held.batches, held.bundles)
      const digest = hashBatchSet(deployment.chainId, deployment.contracts.epochManager, epoch, batches)
      const signing = await protection.signOnce(
        'batchSet',
        epoch,
        digest,
        JSON.stringify({ batches }),
        async () => {
          await step('batchSetRecorded', epoch)
          return (
            await signBatchSet({
              account,
              chainId: deployment.chainId,
              epochManager: deployment.contracts.epochManager,
              epoch,
              batches,
            })
          ).signature
        },
      )
      held.announced = true
      if (signing.type === 'refused') {
        // an imported record of another list, or an epoch below the imported watermark
        reportRefusal('batchSet', epoch, digest, signing)
      } else {
        await step('batchSetSigned', epoch)
        await publishOwn('batchSet', epoch, () =>
          exchange.announceBatches({ epoch, batches, signer: account.address, signature: signing.signature }),
        )
      }
    }
    const active = validatorsOf(epoch)
    const announcements = await exchange.collectBatchSets(epoch)
    if (
      announcersAmong(announcements, active as Address[]).size < active.length &&
      clock() < sealedAt + agreementWait
    )
      return undefined
    const agreed = agreedBatches(announcements, active as Address[])
    const inputs = await batchesByHash(epoch, agreed, held, gateways)
    if (!inputs) return undefined
    const readings = mergeBatches(
      ownEpochReadings(epoch, inputs.batches, windowOf, countsLateRecords),
      isAuthentic,
    )
    store.pruneBatches(epoch - KEEP_BATCH_EPOCHS)
    return { readings, batchHashes: agreed, ...lateOf(epoch, inputs.batches), bundles: inputs.bundles }
  }

  const windowOf = (e: bigint) => ({ start: epochStart(e), end: epochStart(e + 1n) })
  /** The epochs a batch in an epoch's input may be of: its own, and those whose late batches it counts. */
  const batchEpochs = (epoch: bigint): BatchEpochs => ({ from: lateEpochsOf(epoch)[0] ?? epoch, to: epoch })
  /** How many of an input's batches are late, and the oldest epoch among them (the epoch itself when none is). */
  const lateOf = (epoch: bigint, batches: readonly CheckedBatch[]) => {
    const late = batches.filter((b) => b.epoch < epoch)
    let oldest = epoch
    for (const b of late) if (b.epoch < oldest) oldest = b.epoch
    return { late: late.length, oldest }
  }
  /** Per epoch and gateway URL: the content address of the gateway's batch, once seen. */
  const gatewayBatchHashes = new Map<string, Hex>()

  /**
   * The batches this validator's own results counted in the epochs before `epoch` that may still
   * settle or did settle: a batch of theirs is not late. An epoch that can no longer settle counted
   * nothing, so its batches may come again as late ones.
   */
  function countedBatches(epoch: bigint): Set<Hex> {
    const counted = new Set<Hex>()
    const seen = indexer.store.lastProcessed()?.timestamp ?? 0n
    for (const e of lateEpochsOf(epoch)) {
      const own = store.judgedOn(e)
      if (!own) continue
      const dead = !indexer.store.getEpoch(e) && seen >= settlementDeadline(e)
      if (!dead) for (const hash of own.batchHashes) counted.add(hash.toLowerCase() as Hex)
    }
    return counted
  }

  /**
   * Adds to `held` the late batches this validator can vouch for: for each epoch it judged among
   * the last LATE_BATCH_EPOCHS, the batch of each gateway listed at that epoch's end that none of its
   * counted inputs holds (the gateway sealed it after the epoch was agreed, or the epoch could not
   * settle). A gateway's batch is looked up by its hash first (HEAD), fetched only when it is new.
   */
  async function gatherLateBatches(epoch: bigint, held: Map<Hex, CheckedBatch>): Promise<void> {
    const counted = countedBatches(epoch)
    // only epochs this validator judged: it knows their input, so what it announces late is late
    // (f + 1 announcers then include an honest validator that judged the epoch)
    const wanted = lateEpochsOf(epoch)
      .filter((e) => store.judgedOn(e) !== undefined)
      .flatMap((e) =>
        indexer.store
          .gatewaysAt(epochStart(e + 1n))
          .filter((g) => /^https?:\/\//.test(g.url))
          .map((g) => ({ e, g })),
      )
    await Promise.all(
      wanted.map(async ({ e, g }) => {
        const key = `${e}:${g.url}`
        try {
          let hash = gatewayBatchHashes.get(key)
          if (!hash) {
            hash = await fetchGatewayBatchHash(g.url, e, { ...asking, timeoutMs: 2_000 })
            if (!hash) return // not sealed yet, or down: asked again for the next epoch
            gatewayBatchHashes.set(key, hash)
          }
          if (counted.has(hash) || held.has(hash)) return
          const stored = store.batch(hash)
          let batch: CheckedBatch
          if (stored)
            batch = checkBatch(keccak, stored, hash, e, recordKinds) // throws if another epoch's
          else {
            const result = await fetchGatewayBatch(keccak, g.url, e, {
              ...asking,
              kinds: recordKinds,
              timeoutMs: 5_000,
            })
            if (result.type === 'invalid')
              options.onGatewayInvalid?.({ epoch: e, gateway: g.gateway, url: g.url, reason: result.reason })
            if (result.type !== 'sealed' || result.batch.hash !== hash) {
              if (result.type !== 'unavailable') gatewayBatchHashes.delete(key) // a hash it does not serve
              return
            }
            batch = result.batch
            store.saveBatch(batch)
          }
          if (batch.readings.length > 0) held.set(hash, batch) // an empty one adds nothing
        } catch (error) {
          // a hash of another epoch's batch, or bytes that are not what they claim: not this epoch's
          gatewayBatchHashes.delete(key)
          options.onGatewayInvalid?.({
            epoch: e,
            gateway: g.gateway,
            url: g.url,
            reason: error instanceof Error ? error.message : String(error),
          })
        }
      }),
    )
    for (const old of gatewayBatchHashes.keys())
      if (BigInt(old.slice(0, old.indexOf(':'))) < epoch - LATE_BATCH_EPOCHS) gatewayBatchHashes.delete(old)
  }

  /**
   * The batch list to announce for an epoch: its own epoch's batches, then late ones oldest first,
   * at most MAX_BATCHES_PER_SET (late ones left out come again in the next epoch).
   */
  function announcedList(
    epoch: bigint,
    held: Map<Hex, CheckedBatch>,
    bundles: Map<Hex, CheckedServedBundle>,
  ): Hex[] {
    // the epoch's own batches first, then served bundles (they never come again), then late batches
    const rank = (b: { epoch: bigint; bundle: boolean }) =>
      b.epoch === epoch && !b.bundle ? -2n : b.bundle ? -1n : b.epoch
    const items = [
      ...[...held.values()].map((b) => ({ epoch: b.epoch, hash: b.hash, bundle: false })),
      ...[...bundles.values()].map((b) => ({ epoch: b.epoch, hash: b.hash, bundle: true })),
    ]
    const ordered = items.sort((a, b) =>
      rank(a) !== rank(b) ? (rank(a) < rank(b) ? -1 : 1) : a.hash < b.hash ? -1 : 1,
    )
    return canonicalBatchList(ordered.slice(0, MAX_BATCHES_PER_SET).map((b) => b.hash))
  }

  /**
   * The batches with these content addresses: held ones, else fetched from a peer or a gateway
   * (checked against the address, format and epoch) and kept; undefined while one is missing.
   */
  async function batchesByHash(
    epoch: bigint,
    hashes: readonly Hex[],
    holding: { batches: Map<Hex, CheckedBatch>; bundles: Map<Hex, CheckedServedBundle> },
    gateways: readonly { url: string }[],
  ): Promise<{ batches: CheckedBatch[]; bundles: CheckedServedBundle[] } | undefined> {
    const held = holding.batches
    const inputs = { batches: [] as CheckedBatch[], bundles: [] as CheckedServedBundle[] }
    for (const hash of hashes) {
      if (held.has(hash) || holding.bundles.has(hash)) continue
      const stored = store.batch(hash)
      if (stored && isServedBundle(stored)) {
        holding.bundles.set(hash, decodeServedBundle(keccak, stored, hash))
        continue
      }
      if (stored) {
        held.set(hash, checkBatch(keccak, stored, hash, batchEpochs(epoch), recordKinds))
        continue
      }
      // the peer's bytes are checked (content address, format, epoch) once, as they are accepted
      let fromPeer: CheckedBatch | undefined
      let bundleFromPeer: CheckedServedBundle | undefined
      await exchange.fetchBatch(hash, (bytes) => {
        try {
          if (isServedBundle(bytes)) bundleFromPeer = decodeServedBundle(keccak, bytes, hash)
          else fromPeer = checkBatch(keccak, bytes, hash, batchEpochs(epoch), recordKinds)
          return true
        } catch {
          return false
        }
      })
      if (bundleFromPeer) {
        holding.bundles.set(hash, bundleFromPeer)
        store.saveBatch(bundleFromPeer)
        options.onBatchRecovered?.({ epoch, hash, from: 'peer' })
        continue
      }
      const batch =
        fromPeer ??
        (await fetchBatchByHash(
          keccak,
          gateways.map((g) => g.url),
          hash,
          batchEpochs(epoch),
          { ...asking, kinds: recordKinds },
        ))
      if (!batch) return undefined // every holder is down or slow: again at the next tick
      held.set(hash, batch)
      store.saveBatch(batch)
      options.onBatchRecovered?.({ epoch, hash, from: fromPeer ? 'peer' : 'gateway' })
    }
    for (const hash of hashes) {
      const batch = held.get(hash)
      if (batch) inputs.batches.push(batch)
      else inputs.bundles.push(holding.bundles.get(hash) as CheckedServedBundle)
    }
    return inputs
  }

  /** Bundles fetched, by "epoch:provider url": a provider is asked once per epoch it redeemed in. */
  const providerBundles = new Map<string, Hex>()

  /**
   * Fetches the served bundles of the providers that redeemed in `epoch` or, while unsettled, in
   * the epochs before it that a late batch may come from; keeps each that holds against the chain.
   */
  async function gatherServedBundles(epoch: bigint, held: Map<Hex, CheckedServedBundle>): Promise<void> {
    // asked again every second until each answered or the gateway wait is over, like gateways
    const deadline = epochStart(epoch + 1n) + sealDelay + gatewayWait
    for (let pass = 0; ; pass++) {
      const missing = await gatherServedBundlesOnce(epoch, held)
      if (missing === 0 || clock() >= deadline || pass >= 60) return
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
  }

  /** One pass of gatherServedBundles: how many providers that redeemed have not answered yet. */
  async function gatherServedBundlesOnce(
    epoch: bigint,
    held: Map<Hex, CheckedServedBundle>,
  ): Promise<number> {
    let missing = 0
    const seen = indexer.store.lastProcessed()?.timestamp ?? 0n
    const epochs = [...lateEpochsOf(epoch), epoch].filter((e) => e === epoch || !indexer.store.getEpoch(e))
    const previous = (r: Parameters<typeof indexer.store.redemptionBefore>[0]) =>
      indexer.store.redemptionBefore(r)
    await Promise.all(
      epochs.flatMap((e) => {
        const window = windowOf(e)
        if (seen < window.end) return []
        return indexer.store.providersAt(window.end).map(async (provider) => {
          const redemptions = redemptionsOf(indexer.store, provider.provider, window)
          if (redemptions.length === 0 || !/^https?:\/\//.test(provider.url)) return
          const key = `${e}:${provider.url}`
          const known = providerBundles.get(key)
          const stored = known && store.batch(known)
          if (stored) {
            held.set(known as Hex, decodeServedBundle(keccak, stored, known as Hex))
            return
          }
          const result = await fetchServedBundle(keccak, provider, e, redemptions, previous, asking)
          if (result.type === 'invalid') {
            options.onProviderInvalid?.({
              epoch: e,
              provider: provider.provider,
              url: provider.url,
              reason: result.reason,
            })
            return
          }
          if (result.type === 'unavailable') {
            missing++
            return
          }
          providerBundles.set(key, result.bundle.hash)
          held.set(result.bundle.hash, result.bundle)
          store.saveBatch(result.bundle)
        })
      }),
    )
    for (const key of providerBundles.keys())
      if (BigInt(key.split(':')[0] as string) < epoch - KEEP_BATCH_EPOCHS) providerBundles.delete(key)
    return missing
  }

  /** How long into its turn a leader holding a quorum waits for the rest (none for turns under 2 s). */
  const leaderGrace = (leaderTimeout * 2n) / 3n
  /** Settled epochs whose seen reports are saved (for /v1/validators). */
  const seenSaved = new Set<bigint>()
  /** Keeps who signed what for the recent settled epochs, each once. */
  async function saveSeenReports(last: bigint): Promise<void> {
    for (let epoch = last > 3n ? last - 3n : 0n; epoch <= last; epoch++) {
      if (seenSaved.has(epoch) || !indexer.store.getEpoch(epoch) || !store.result(epoch)) continue
      store.saveSeenReports(epoch, await exchange.collect(epoch))
      seenSaved.add(epoch)
    }
  }
  async function submitIfLeading(): Promise<void> {
    const last = store.lastJudgedEpoch()
    if (last === undefined) return
    // settled: keep who signed what, so a validator left out can be told from one that disagreed
    await saveSeenReports(last)
    if (submitted.has(last)) return
    const epoch = last
    // settled already, or too late: the EpochManager refuses a report after its deadline
    if (indexer.store.getEpoch(epoch) || clock() >= settlementDeadline(epoch)) {
      submitted.add(epoch)
      return
    }
    // (after a wiped indexer re-syncs, the epoch's validator set is not known yet: wait)
    const seen = indexer.store.lastProcessed()
    if (!seen || seen.timestamp < epochStart(epoch + 1n)) return
    const active = validatorsOf(epoch)
    const position = active.indexOf(account.address.toLowerCase())
    if (position < 0) return
    const sinceSeal = clock() - (epochStart(epoch + 1n) + sealDelay + agreementWait)
    const turn = sinceSeal < 0n ? 0n : sinceSeal / leaderTimeout
    // in the last leader timeout before the deadline, anyone holding a quorum submits: leaders
    // that are down must not cost the epoch (the first transaction mined wins, the others revert)
    const lastChance = clock() >= settlementDeadline(epoch) - leaderTimeout
    if (!lastChance && BigInt(position) !== (epoch + turn) % BigInt(active.length)) return

    const own = store.result(epoch)
    if (!own) return
    const quorum = await contracts.validatorSet.read.quorum()
    // the epoch's validators whose signatures still count: the chain checks who is active now
    const countable = activeNow()
    const signers = active.filter((v) => countable.has(v))
    const agreeing = []
    const collected = await exchange.collect(epoch)
    const reported = new Set(
      collected.map((s) => s.signer.toLowerCase()).filter((signer) => signers.includes(signer)),
    )
    for (const s of collected) {
      if (s.digest !== own.digest || !signers.includes(s.signer.toLowerCase())) continue
      const signer = await recoverReportSigner(
        deployment.chainId,
        deployment.contracts.epochManager,
        own.report,
        s.signature,
      )
      if (signer.toLowerCase() === s.signer.toLowerCase()) agreeing.push({ signer, signature: s.signature })
    }
    if (BigInt(agreeing.length) < quorum) return
    // Every honest validator earns for an epoch it signed: with a quorum in hand, the leader still
    // waits (two thirds of its turn at most) for the active validators that have not reported; one that
    // reported another digest is not waited for.
    const turnStart = epochStart(epoch + 1n) + sealDelay + agreementWait + turn * leaderTimeout
    if (!lastChance && reported.size < signers.length && clock() < turnStart + leaderGrace) return
    submitted.add(epoch)
    try {
      const key = `report:${epoch}`
      const args = [own.report, orderSignatures(agreeing)] as const
      // a new submission's gas is estimated first, which names a revert (another leader won);
      // one recorded before a restart goes out as it was recorded
      const recorded = journal.entry(key)
      const gas =
        recorded?.status === 'pending' || recorded?.status === 'mined'
          ? undefined
          : await contracts.epochManager.estimateGas.submitReport(args, { account: clients.account })
      const receipt = await journal.send(
        key,
        {
          to: deployment.contracts.epochManager,
          data: encodeFunctionData({ abi: epochManagerAbi, functionName: 'submitReport', args }),
          ...(gas === undefined ? {} : { gas }),
        },
        `the report for epoch ${epoch}`,
        () => step('submissionSent', epoch),
      )
      const hash = receipt.transactionHash
      reportsSubmitted.inc()
      options.onSubmitted?.({ epoch, txHash: hash, signers: agreeing.length, active: active.length })
    } catch (error) {
      // another submitter won (in the last chance, everyone holding a quorum submits): nothing to do
      if (revertName(error) === 'EpochNotIncreasing') return
      // mined and reverted: fine when another submitter came first (the epoch settled); any other
      // revert is reported, and the next tick signs a new submission
      if (
        (error as { code?: string }).code === 'TRANSACTION_REVERTED' &&
        (await contracts.epochManager.read.nextEpoch().catch(() => 0n)) > epoch
      )
        return
      // or the node hiccupped: try again next tick
      submitted.delete(epoch)
      throw error
    }
  }

  /**
   * Two different reports signed by one validator for one epoch are proof of equivocation: when
   * the exchange holds such a pair (an HTTP exchange keeps them), submit it to the EpochManager,
   * which slashes the signer's bond. Another honest validator may win the race: that revert
   * (EpochAlreadyPunished) is expected and ignored.
   */
  const proven = new Set<string>()
  async function proveEquivocations(): Promise<void> {
    if (!('equivocations' in exchange) || typeof exchange.equivocations !== 'function') return
    const held = exchange.equivocations as (epoch: bigint) => ReportEquivocation[]
    const last = store.lastJudgedEpoch() ?? firstEpoch ?? 0n
    const punished = new Set(
      indexer.store.equivocations().map((e) => `${e.validator.toLowerCase()}:${e.epoch}`),
    )
    for (let epoch = last > 4n ? last - 4n : 0n; epoch <= last + 2n; epoch++) {
      for (const { signer, a, b } of held(epoch)) {
        const key = `${signer.toLowerCase()}:${epoch}`
        if (punished.has(key) || proven.has(key)) continue
        proven.add(key)
        try {
          const hash = await contracts.epochManager.write.proveEquivocation([
            a.report,
            a.signature,
            b.report,
            b.signature,
          ])
          const receipt = await clients.publicClient.waitForTransactionReceipt({ hash })
          if (receipt.status === 'success')
            options.onEquivocationProven?.({ validator: signer, epoch, txHash: hash })
        } catch (error) {
          if (revertName(error) !== 'EpochAlreadyPunished') throw error
        }
      }
    }
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  async function tick(): Promise<void> {
    await republishRecent()
    await judgeNext()
    await submitIfLeading()
    await proveEquivocations()
  }
  return {
    address: account.address,
    store,
    tick,
    async start() {
      timer = setInterval(() => {
        if (running) return
        running = tick()
          .catch((error: unknown) => {
            if (options.onError) options.onError(error)
            else options.context?.report('VALIDATOR_TICK_FAILED', error)
          })
          .finally(() => {
            running = undefined
          })
      }, options.tickMs ?? 250)
    },
    async stop() {
      if (timer) clearInterval(timer)
      await running
      await pool?.close()
      store.close()
      protection.close()
      journal.close()
    },
  }
}
