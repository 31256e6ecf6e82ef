import {
  type Account,
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  type Hex,
  keccak256,
} from 'viem'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { getContracts } from '../chain/getContracts.ts'
import {
  hashEpochReport,
  orderSignatures,
  recoverReportSigner,
  signEpochReport,
} from '../chain/signEpochReport.ts'
import type { EpochReport } from '../chain/typedData.ts'
import { loadKeccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import type { Indexer } from '../indexer/createIndexer.ts'
import type { DeviceRecord } from '../indexer/indexerStore.ts'
import { createReadingHasher } from '../readings/createReadingHasher.ts'
import { recoverSigner } from '../readings/recoverReadingSigner.ts'
import type { ReportEquivocation } from './createHttpReportExchange.ts'
import { fetchEpochBatches } from './fetchEpochBatches.ts'
import { computeEpochRewards } from './judge/computeEpochRewards.ts'
import { judgeEpoch } from './judge/judgeEpoch.ts'
import type { ReportExchange } from './reportExchange.ts'
import { createValidatorStore, type EpochResult } from './validatorStore.ts'

export type CreateValidatorOptions = {
  blueprint: Blueprint
  deployment: Deployment
  /** This validator's chain clients: its wallet signs reports and submits them. */
  clients: ChainClients
  /** This validator's own indexer (its own view of the chain). */
  indexer: Indexer
  /** This validator's own SQLite file. */
  dbPath: string
  gatewayUrls: readonly string[]
  exchange: ReportExchange
  /** The first epoch to judge (default: the epoch running at start, for a validator with an empty store). */
  firstEpoch?: bigint
  /** Milliseconds a leader has before the next validator in order takes over (default 10,000). */
  leaderTimeoutMs?: number
  tickMs?: number
  /** Unix seconds; defaults to the system clock. */
  clock?: () => bigint
  onJudged?: (result: EpochResult & { judgedReadings: number }) => void
  onSubmitted?: (event: { epoch: bigint; txHash: Hex; signers: number }) => void
  /**
   * Makes this validator Byzantine, for fault tests and demonstrations: `wrongRewardsRoot` signs
   * only a report with a rewards root of its own making; `equivocate` signs both the honest one
   * and that one (two different reports for one epoch: slashable).
   */
  simulateFault?: 'wrongRewardsRoot' | 'equivocate'
  /** Called after this validator proved an equivocation on-chain. */
  onEquivocationProven?: (event: { validator: Address; epoch: bigint; txHash: Hex }) => void
  onError?: (error: unknown) => void
}

export type Validator = {
  readonly address: Address
  start(): Promise<void>
  stop(): Promise<void>
  /** Runs one round: judge the next epoch if ready, submit pending reports if leading. */
  tick(): Promise<void>
  readonly store: ReturnType<typeof createValidatorStore>
}

const systemClock = () => BigInt(Math.floor(Date.now() / 1000))

/**
 * A validator node. Per closed epoch it fetches the sealed batches of every gateway (checking
 * their content address), re-verifies every signature itself, judges the readings by the
 * blueprint's quality rules against the registry as of the epoch's end, computes rewards on top
 * of the cumulative amounts of the last epoch settled before this one ended, signs the report,
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
  const digest = await createReadingHasher(deployment.chainId, deployment.contracts.deviceRegistry)
  const store = createValidatorStore(options.dbPath)
  const contracts = getContracts(clients, deployment)
  const { genesisTime, epochLength } = deployment
  const sealDelay = BigInt(blueprint.epochs.sealDelaySeconds)
  const leaderTimeout = BigInt(Math.ceil((options.leaderTimeoutMs ?? 10_000) / 1000))
  const epochStart = (epoch: bigint) => genesisTime + epoch * epochLength
  let firstEpoch = options.firstEpoch
  if (firstEpoch === undefined && store.lastJudgedEpoch() === undefined) {
    const now = clock()
    firstEpoch = now < genesisTime ? 0n : (now - genesisTime) / epochLength
  }
  const submitted = new Set<bigint>()

  async function judgeNext(): Promise<void> {
    const last = store.lastJudgedEpoch()
    const next = last === undefined ? (firstEpoch ?? 0n) : last + 1n
    // After downtime, skip to the newest sealable epoch: an epoch judged long after its successor
    // closed could no longer build on the settlement before it (the chain moved on).
    const now = clock()
    const newestSealable =
      now < genesisTime + sealDelay ? -1n : (now - sealDelay - genesisTime) / epochLength - 1n
    const epoch = next < newestSealable ? newestSealable : next
    const end = epochStart(epoch + 1n)
    if (now < end + sealDelay) return
    const lastProcessed = indexer.store.lastProcessed()
    if (!lastProcessed || lastProcessed.timestamp < end) return // registry state at the epoch's end not final yet
    const batches = await fetchEpochBatches(keccak, options.gatewayUrls, epoch, (reading) => {
      const signer = recoverSigner(keccak, digest(reading), reading.signature)
      return signer.type === 'recovered' && signer.address === reading.device.toLowerCase()
    })
    if (batches.type === 'pending') return

    const devices = new Map<string, DeviceRecord>(
      indexer.store.devicesAt(end).map((d) => [d.device.toLowerCase(), d]),
    )
    // Build on the last epoch the chain settled before this one ended: the same base for every validator.
    const base = indexer.store.epochs().find((e) => e.epoch < epoch && e.timestamp < end)
    let previousCumulative = new Map<string, bigint>()
    if (base) {
      const own = store.result(base.epoch)
      if (!own || own.report.rewardsRoot !== base.rewardsRoot) {
        throw new DepinError(
          'VALIDATOR_BASE_MISMATCH',
          `epoch ${base.epoch} settled with rewards root ${base.rewardsRoot}, which this validator ${own ? `computed as ${own.report.rewardsRoot}` : 'never computed'}: it cannot build epoch ${epoch} on it`,
        )
      }
      previousCumulative = own.cumulative
    }
    const judged = judgeEpoch({
      blueprint,
      epoch,
      epochStart: epochStart(epoch),
      epochEnd: end,
      readings: batches.readings,
      devices,
      digest,
      keccak,
    })
    const rewards = computeEpochRewards({
      blueprint,
      epoch,
      scores: judged.devices,
      previousSigners: base?.signers ?? [],
      previousCumulative,
    })
    const report: EpochReport = {
      epoch,
      readingsRoot: judged.readingsRoot,
      rewardsRoot: rewards.rewardsRoot,
      total: rewards.total,
      accepted: judged.accepted,
    }
    const signed = await signEpochReport({
      account,
      chainId: deployment.chainId,
      epochManager: deployment.contracts.epochManager,
      report,
    })
    const result: EpochResult = {
      epoch,
      report,
      digest: hashEpochReport(deployment.chainId, deployment.contracts.epochManager, report),
      signature: signed.signature,
      cumulative: rewards.cumulative,
      rejectedByReason: judged.rejectedByReason,
      batchHashes: batches.batchHashes,
    }
    store.saveResult(
      result,
      judged.judged.map((j) => ({
        device: j.reading.device.toLowerCase(),
        seq: j.reading.seq,
        status: j.verdict.type,
        reason: j.verdict.type === 'rejected' ? j.verdict.reason : null,
      })),
    )
    if (options.simulateFault !== 'wrongRewardsRoot') {
      await exchange.publish({
        epoch,
        report,
        digest: result.digest,
        signer: account.address,
        signature: signed.signature,
      })
    }
    if (options.simulateFault) {
      // a Byzantine validator for fault tests: it signs a rewards root of its own making
      const lie: EpochReport = { ...report, rewardsRoot: keccak256(report.rewardsRoot) }
      const lieSigned = await signEpochReport({
        account,
        chainId: deployment.chainId,
        epochManager: deployment.contracts.epochManager,
        report: lie,
      })
      await exchange.publish({
        epoch,
        report: lie,
        digest: hashEpochReport(deployment.chainId, deployment.contracts.epochManager, lie),
        signer: account.address,
        signature: lieSigned.signature,
      })
    }
    options.onJudged?.({ ...result, judgedReadings: judged.judged.length })
  }

  async function submitIfLeading(): Promise<void> {
    const last = store.lastJudgedEpoch()
    if (last === undefined || submitted.has(last)) return
    const epoch = last
    if (indexer.store.getEpoch(epoch)) {
      submitted.add(epoch)
      return
    }
    const active = indexer.store
      .validators()
      .filter((v) => v.status === 'active')
      .map((v) => v.validator.toLowerCase())
      .sort()
    const position = active.indexOf(account.address.toLowerCase())
    if (position < 0) return
    const sinceSeal = clock() - (epochStart(epoch + 1n) + sealDelay)
    const turn = sinceSeal < 0n ? 0n : sinceSeal / leaderTimeout
    if (BigInt(position) !== (epoch + turn) % BigInt(active.length)) return

    const own = store.result(epoch)
    if (!own) return
    const quorum = await contracts.validatorSet.read.quorum()
    const agreeing = []
    for (const s of await exchange.collect(epoch)) {
      if (s.digest !== own.digest || !active.includes(s.signer.toLowerCase())) continue
      const signer = await recoverReportSigner(
        deployment.chainId,
        deployment.contracts.epochManager,
        own.report,
        s.signature,
      )
      if (signer.toLowerCase() === s.signer.toLowerCase()) agreeing.push({ signer, signature: s.signature })
    }
    if (BigInt(agreeing.length) < quorum) return
    submitted.add(epoch)
    const hash = await contracts.epochManager.write.submitReport([own.report, orderSignatures(agreeing)])
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success')
      throw new DepinError('REPORT_REVERTED', `report for epoch ${epoch} reverted`)
    options.onSubmitted?.({ epoch, txHash: hash, signers: agreeing.length })
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
          const revert =
            error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : null
          if (
            !(
              revert instanceof ContractFunctionRevertedError &&
              revert.data?.errorName === 'EpochAlreadyPunished'
            )
          ) {
            throw error
          }
        }
      }
    }
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  async function tick(): Promise<void> {
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
          })
          .finally(() => {
            running = undefined
          })
      }, options.tickMs ?? 250)
    },
    async stop() {
      if (timer) clearInterval(timer)
      await running
      store.close()
    },
  }
}
