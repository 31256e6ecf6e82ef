import { join } from 'node:path'
import { type Account, parseGwei } from 'viem'
import { z } from 'zod'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import { getContracts } from '../chain/getContracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { createContext, installProcessHandlers, untilAborted } from '../protocol/context.ts'
import { readJsonFile, resolveConfigPaths } from '../readJsonFile.ts'
import { createHttpReportExchange } from '../validator/createHttpReportExchange.ts'
import { type CreateValidatorOptions, createValidator } from '../validator/createValidator.ts'
import { createExchangeAdmission } from '../validator/exchangeAdmission.ts'
import type { ReportExchange } from '../validator/reportExchange.ts'
import { advertisedUrlOf, indexerFollowingSchema, openRoleContext } from './openRoleContext.ts'

/** The config file of one validator process; relative paths are relative to the file. */
export const validatorConfigSchema = z.object({
  /** This validator's own directory: its SQLite store and indexer live here. */
  dataDir: z.string(),
  /** The validator's key file (0x + 64 hex, mode 0600). */
  keyFile: z.string(),
  rpcUrl: z.string().url(),
  blueprint: z.string(),
  /** The deployment file of the network. */
  deployment: z.string(),
  /** Other validators' endpoints, besides those active validators advertise on-chain. */
  peers: z.array(z.string().url()).default([]),
  /** Where peers reach this validator (advertised on-chain at start); default http://host:port. */
  advertiseUrl: z.string().url().optional(),
  host: z.string().default('127.0.0.1'),
  /** Port of this validator's report exchange (GET/POST /v1/reports). */
  port: z.number().int().min(0).max(65535),
  /** Milliseconds a leader has before the next validator takes over. */
  leaderTimeoutMs: z.number().int().positive().default(10_000),
  /** Milliseconds after sealing for agreeing with the peers on an epoch's batches. */
  agreementTimeoutMs: z.number().int().positive().default(4_000),
  /**
   * Milliseconds after sealing that a listed gateway which has not answered is waited for (default:
   * half the agreement timeout); its readings miss the epoch after that. Make it longer than a
   * gateway takes to restart.
   */
  gatewayWaitMs: z.number().int().positive().optional(),
  /** Worker threads for the signature checks of large epochs (default: the machine's parallelism). */
  signatureThreads: z.number().int().min(0).optional(),
  /** Readings from which an epoch's signatures are checked on those threads. */
  parallelJudgeFrom: z.number().int().min(0).default(20_000),
  /** How its indexer follows the chain: { confirmations | blockTag: 'safe' | 'finalized', finality } (reorg safety). */
  indexer: indexerFollowingSchema,
  /** The highest max fee per gas its report transactions pay, in gwei (default: no cap). */
  maxFeePerGasGwei: z.number().positive().optional(),
})
export type ValidatorConfig = z.output<typeof validatorConfigSchema>

/** Reads and validates a validator config file; errors name the file and the field. */
export function readValidatorConfig(path: string): ValidatorConfig {
  return resolveConfigPaths(
    path,
    readJsonFile(path, validatorConfigSchema, 'VALIDATOR_CONFIG_INVALID', 'validator config'),
    ['dataDir', 'keyFile', 'blueprint', 'deployment'],
  )
}

/**
 * Advertises `url` as this validator's endpoint on-chain (ValidatorSet.setEndpoint), unless it
 * is there already; only an active validator can.
 */
async function advertiseEndpoint(
  clients: ChainClients,
  deployment: Deployment,
  url: string | undefined,
): Promise<{ advertised: 'unchanged' | 'set' | 'not active' | 'no url' }> {
  if (!url) return { advertised: 'no url' }
  const { validatorSet } = getContracts(clients, deployment)
  const address = (clients.account as Account).address
  if (!(await validatorSet.read.isActive([address]))) return { advertised: 'not active' }
  if ((await validatorSet.read.endpointOf([address])) === url) return { advertised: 'unchanged' }
  await sendTransaction(clients.publicClient, validatorSet.write.setEndpoint([url]), 'setEndpoint')
  return { advertised: 'set' }
}

/**
 * What a test harness may add to a validator process, never reachable from a config file or the
 * command line: a wrapper around its exchange (Byzantine behaviour in fault tests) and a hook at
 * each step of judging (fault injection: the process kills itself there).
 */
export type ValidatorTestHooks = {
  wrapExchange?: (
    exchange: ReportExchange,
    context: { clients: ChainClients; deployment: Deployment },
  ) => ReportExchange
  onStep?: CreateValidatorOptions['onStep']
}

/**
 * `depin validator run --config FILE`: one validator as a process of its own, with its own key,
 * SQLite store, indexer and HTTP report exchange, that can run on another machine. Logs one JSON
 * line per event (never the key). Stops cleanly on SIGINT/SIGTERM.
 */
export async function runValidator(
  options: { config: string },
  hooks: ValidatorTestHooks = {},
): Promise<void> {
  const config = readValidatorConfig(options.config)
  // one context for the process: its logger, its shutdown signal, loud on what would kill it
  const context = createContext({ role: 'validator' })
  const uninstall = installProcessHandlers(context)
  const logLine = context.log
  const { blueprint, deployment, clients, indexer } = await openRoleContext(config, context)
  const own = (clients.account as Account).address.toLowerCase()
  // where peers reach this validator: given, or its listening address when that is a specific host
  const advertisedUrl = advertisedUrlOf(
    config.host,
    config.advertiseUrl,
    `http://${config.host}:${config.port}`,
  )
  const peerErrorLogged = new Map<string, number>()
  let lastError = { message: '', at: 0 }
  const exchange = createHttpReportExchange({
    metrics: context.metrics,
    chainId: deployment.chainId,
    epochManager: deployment.contracts.epochManager,
    peers: config.peers,
    // and every active validator that advertised its endpoint on-chain
    discoverPeers: () =>
      indexer.store
        .validatorEndpoints()
        .filter((e) => e.validator.toLowerCase() !== own)
        .map((e) => e.url),
    ...(advertisedUrl ? { advertisedUrl } : {}),
    host: config.host,
    port: config.port,
    // only the network's validators, for epochs around the current one: checked before any signature
    admit: createExchangeAdmission({
      validators: indexer.store,
      genesisTime: deployment.genesisTime,
      epochLength: deployment.epochLength,
    }),
    onPeerError: ({ peer, action, error }) => {
      // a peer that is down fails every tick: say so once per peer and action every 30 s
      const key = `${peer} ${action}`
      if (Date.now() - (peerErrorLogged.get(key) ?? 0) < 30_000) return
      peerErrorLogged.set(key, Date.now())
      logLine('peer_unreachable', {
        peer,
        action,
        error: error instanceof Error ? error.message : String(error),
      })
    },
  })
  await exchange.start()
  const advertised = await advertiseEndpoint(clients, deployment, advertisedUrl)
  logLine('endpoint', { url: advertisedUrl ?? null, ...advertised })
  // a node started before its key was bonded advertises once it is active
  let advertising: NodeJS.Timeout | undefined
  if (advertised.advertised === 'not active') {
    advertising = setInterval(() => {
      advertiseEndpoint(clients, deployment, advertisedUrl)
        .then((again) => {
          if (again.advertised === 'not active') return
          clearInterval(advertising)
          logLine('endpoint', { url: advertisedUrl ?? null, ...again })
        })
        // the chain may be briefly unreachable: said, and asked again in 10 s
        .catch((error: unknown) => context.report('ENDPOINT_NOT_ADVERTISED', error))
    }, 10_000)
  }
  const validator = await createValidator({
    metrics: context.metrics,
    blueprint,
    deployment,
    clients,
    indexer,
    dbPath: join(config.dataDir, 'validator.db'),
    exchange: hooks.wrapExchange ? hooks.wrapExchange(exchange, { clients, deployment }) : exchange,
    ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
    leaderTimeoutMs: config.leaderTimeoutMs,
    agreementTimeoutMs: config.agreementTimeoutMs,
    ...(config.gatewayWaitMs === undefined ? {} : { gatewayWaitMs: config.gatewayWaitMs }),
    parallelJudgeFrom: config.parallelJudgeFrom,
    ...(config.maxFeePerGasGwei !== undefined
      ? { maxFeePerGas: parseGwei(String(config.maxFeePerGasGwei)) }
      : {}),
    onResent: (r) => logLine('transaction_resent', { key: r.key, hash: r.hash }),
    ...(config.signatureThreads === undefined ? {} : { signatureThreads: config.signatureThreads }),
    onJudged: (r) =>
      logLine('epoch_judged', {
        epoch: r.epoch,
        readings: r.judgedReadings,
        accepted: r.report.accepted,
        rewardsRoot: r.report.rewardsRoot,
        total: r.report.total,
      }),
    onGatewayInvalid: (g) =>
      logLine('gateway_invalid', { epoch: g.epoch, gateway: g.gateway, reason: g.reason }),
    onBaseAdopted: (b) => logLine('base_adopted', { epoch: b.epoch, accounts: b.accounts }),
    onBatchRecovered: (b) => logLine('batch_recovered', { epoch: b.epoch, batch: b.hash, from: b.from }),
    onLateBatches: (l) =>
      logLine(l.abstained ? 'late_input_unknown' : 'late_batches', {
        epoch: l.epoch,
        batches: l.batches,
        oldest: l.oldest,
        readings: l.readings,
        dropped: l.dropped,
      }),
    onUsageFees: (f) =>
      logLine(f.abstained ? 'served_input_unknown' : 'usage_fees', {
        epoch: f.epoch,
        redemptions: f.redemptions,
        amount: f.amount,
        paidReadings: f.paidReadings,
        provenReadings: f.provenReadings,
        unshown: f.unshown,
      }),
    onProviderInvalid: (p) =>
      logLine('provider_invalid', { epoch: p.epoch, provider: p.provider, reason: p.reason }),
    onSubmitted: (s) =>
      logLine('report_submitted', { epoch: s.epoch, tx: s.txHash, signers: s.signers, active: s.active }),
    onSigningRefused: (r) =>
      logLine('signing_refused', {
        epoch: r.epoch,
        kind: r.kind,
        code: r.code,
        digest: r.digest,
        recorded: r.recorded,
      }),
    onOwnItemRefused: (r) =>
      logLine('own_item_refused', {
        epoch: r.epoch,
        kind: r.kind,
        refusals: r.refusals.map((x) => ({ peer: x.peer, code: x.code, message: x.message })),
      }),
    onRepublished: (r) => logLine('republished', { epoch: r.epoch, kind: r.kind }),
    onEquivocationProven: (e) =>
      logLine('equivocation_proven', { validator: e.validator, epoch: e.epoch, tx: e.txHash }),
    onError: (error) => {
      // a condition that persists (a peer not caught up yet, …) fails every tick: once per 30 s
      const message = error instanceof Error ? error.message : String(error)
      if (message === lastError.message && Date.now() - lastError.at < 30_000) return
      lastError = { message, at: Date.now() }
      context.report('VALIDATOR_TICK_FAILED', error)
    },
  })
  await validator.start()
  logLine('validator_started', { address: validator.address, exchange: exchange.url })

  await untilAborted(context.shutdown)
  logLine('validator_stopping', {})
  clearInterval(advertising)
  await validator.stop()
  await indexer.stop()
  await exchange.stop()
  logLine('validator_stopped', {})
  uninstall()
}
