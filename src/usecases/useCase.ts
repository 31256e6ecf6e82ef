/**
 * A use case, as the shared pipeline knows it: the one interface through which the judge (and,
 * as more moves here, the gateway, the API and the dashboard) reaches what is specific to
 * environmental sensors, connectivity, energy…. Everything a use case decides lives in its folder
 * (`src/usecases/<id>/`); the pipeline imports only this file and `registry.ts`, and a test of the
 * import graph keeps it that way.
 */

import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Address, PublicClient } from 'viem'
import type { z } from 'zod'
import type { ProveReadingsReturnType } from '../api/createReadingProver.ts'
import type { ProvenReceipt } from '../api/createReceiptProver.ts'
import type { DeviceLocator } from '../api/locateDevices.ts'
import type { Blueprint } from '../blueprint/loadBlueprint.ts'
import type { ChainClients } from '../chain/createChainClients.ts'
import type { Deployment } from '../chain/deployment.ts'
import type { SettledReport } from '../chain/epochRandomness.ts'
import type { Keccak256 } from '../crypto/keccak.ts'
import type { EpochRecord, DeviceRecord as IndexerDeviceRecord } from '../indexer/indexerStore.ts'
import type { Paywall } from '../market/createPaywall.ts'
import type { SignedReading } from '../readings/reading.ts'
import type { RecordKind } from '../readings/recordKinds.ts'
import type { DeviceRecord } from '../validator/judge/judgement.ts'
import type { AcceptedReading, ValidatorStore } from '../validator/validatorStore.ts'

/** Verdict code of a reading not rejected (yet). */
export const ACCEPTED = 0

/**
 * What a use case's rules see of an epoch: its whole input, after the pipeline's own checks.
 * Readings are in canonical order (device address, then seq), one run per device.
 */
export type RulesInput = {
  blueprint: Blueprint
  epoch: bigint
  /** Where records are signed: the chain and the DeviceRegistry (zero when judged off-chain). */
  network: { chainId: number; deviceRegistry: Address }
  keccak: Keccak256
  /** The epoch's window in unix seconds, [epochStart, epochEnd). */
  epochStart: bigint
  epochEnd: bigint
  /**
   * The earliest record time the epoch admits: epochStart, or earlier when late batches count in
   * it (a gateway sealed them after their own epoch was agreed; src/validator/lateBatches.ts). The
   * pipeline has dropped the records of those epochs judged already; a use case whose records only
   * make sense in their own epoch (connectivity's beacons) keeps to [epochStart, epochEnd).
   */
  recordsFrom: bigint
  /**
   * The epoch's randomness (src/chain/epochRandomness.ts): unknown before the epoch started, the
   * same for every validator, recomputable from chain data; e.g. who beacons this epoch.
   */
  randomness: `0x${string}`
  /** Registry state at the epoch's end, by lower-case device address. */
  devices: ReadonlyMap<string, DeviceRecord>
  readings: readonly SignedReading[]
  /** Each device's readings: readings[start, end). */
  runs: readonly { device: string; start: number; end: number }[]
  /**
   * Verdict codes by reading index, to be completed in place: the pipeline has set those it
   * rejected (signature, unknown or retired device); the rules decide every reading still at
   * ACCEPTED, giving each rejected one `code(reason)` of one of the use case's reasons.
   */
  verdicts: Uint8Array
  /** The verdict code of one of the use case's `rejectReasons`. */
  code(reason: string): number
}

/** A registered device's work in an epoch, as the pipeline counts it and the use case measures it. */
export type DeviceUnits = {
  /** Readings of the device in the epoch, duplicates removed. */
  submitted: number
  /** Of them accepted. */
  accepted: number
  /** The use case's own measures of the device's work (integers), shown with its outcome. */
  units: Readonly<Record<string, number>>
}

/** What the shared API hands a use case's routes: the server, and the pipeline's delivery means. */
export type UseCaseApi = {
  server: FastifyInstance
  blueprint: Blueprint
  /** Which registered devices lie in an area (step 2 of the mission). */
  locate: DeviceLocator
  /** Accepted readings of settled epochs (the serving validator store's). */
  acceptedReadings: ValidatorStore['acceptedReadings']
  /** Proofs of accepted readings against the readings roots the chain settled: served with them or not at all. */
  prove(found: readonly (AcceptedReading & { epoch: bigint })[]): ProveReadingsReturnType
  /** Every receipt of a settled epoch with its proof against the receipts root, or undefined. */
  epochReceipts(epoch: bigint): ProvenReceipt[] | undefined
  /** The settled epochs, newest first (the API's indexer). */
  settledEpochs(limit: number): EpochRecord[]
  /** A registered device (the API's indexer). */
  device(address: Address): IndexerDeviceRecord | undefined
  /** The 400 INVALID_QUERY answer naming the parameter. */
  invalidQuery(reply: FastifyReply, error: z.ZodError): FastifyReply
  /** JSON-safe copy: bigints as decimal strings. */
  toJson(value: unknown): unknown
  /**
   * The data market, when this API is a provider (src/market/createPaywall.ts): a priced route calls
   * `guard` after checking its query and before its work, and `charge` with what it serves before
   * answering; each sends the 401/402 itself (returning undefined / false), and the route then
   * returns the reply as it is. Undefined: the network charges nothing and every route is free.
   */
  pay?: Pick<Paywall, 'guard' | 'charge'>
}

/** One of a use case's delivery routes: documented (OpenAPI) and registered by the shared API. */
export type UseCaseRoute = {
  /** Under /v1, in OpenAPI's `{param}` form. */
  path: string
  summary: string
  query?: z.ZodObject
  params?: Record<string, string>
  register(api: UseCaseApi): void
}

/** What `depin up` hands a use case's simulator: the running network's means. */
export type SimulationContext = {
  blueprint: Blueprint
  deployment: Deployment
  publicClient: PublicClient
  /** Owners' clients (anvil's accounts 1–5): devices are registered by them in turn. */
  ownerClients: readonly ChainClients[]
  gatewayUrl: string
  /** The gateway's signing address: whose verdicts devices believe. */
  gatewayAddress: Address
  /** The broker the gateway takes records from. */
  mqttUrl: string
  /** The network's data directory: a simulator keeps its devices' state in a folder of its own there. */
  stateDir: string
  /** Brings the gateway's registry up to the chain (after registering devices, before sending). */
  syncRegistry(): Promise<void>
  /** The registry as of a time (the gateway's indexer), registration times included. */
  devicesAt(time: bigint): IndexerDeviceRecord[]
  /** The last report settled before a time (the indexer's): what epoch randomness needs. */
  lastReportBefore(time: bigint): SettledReport | undefined
  /** Simulated devices (`depin up --stations`), and the seed they follow from. */
  size?: number
  seed?: number
  /** The caller's options for this simulator (StartEmbeddedNetworkOptions.simulation), its own to read. */
  options?: Readonly<Record<string, unknown>>
  log(line: string): void
}

/** What `depin up` takes from its command line for a use case's simulator. */
export type SimulationFlags = {
  /** `--faults`, e.g. `stuck=1,liar=2` or `none`. */
  faults?: string
  /** `--fleet-transport`. */
  transport?: 'mqtt' | 'http'
  /** `--stations`. */
  size: number
}

export type UseCase = {
  /** The name a blueprint's `useCase` gives. */
  readonly id: string
  /** Bumped on every change of the rules' outcome: part of what validators must agree on. */
  readonly version: number
  /**
   * What its devices sign (src/readings/recordKinds.ts): the first kind is the default on the wire
   * and in batches; the environment has one, Reading.
   */
  readonly recordKinds: readonly RecordKind[]
  /**
   * Whether its records still count when their gateway sealed them late, in a later epoch
   * (src/validator/lateBatches.ts): true for records that stand on their own (a measurement);
   * left out for records bound to their epoch's randomness (connectivity's beacons), for which
   * validators then neither look for late batches nor count any.
   */
  readonly countsLateRecords?: boolean
  /** The reasons its rules reject a reading for, in the order the rules run. */
  readonly rejectReasons: readonly string[]
  /**
   * The names of the measures its rules return per device (integers), in the order a device's
   * receipt lists them: a measure the rules leave out counts 0, one not named here is an error.
   */
  readonly unitNames: readonly string[]
  /** Units summed over an epoch's receipts for `depin up`'s line per epoch, with their words. */
  readonly epochSummary?: Readonly<Record<string, string>>
  /**
   * The rules: a pure, deterministic function of the epoch's whole input, integers only. Sets the
   * verdict of every reading the pipeline left at ACCEPTED, and returns each device's measures by
   * run (the pipeline reads those of registered devices only).
   */
  judge(input: RulesInput): Readonly<Record<string, number>>[]
  /** How a device's work becomes its share of the epoch's device pool (integers, ≥ 0). */
  weight(device: DeviceUnits): bigint
  /**
   * What a gateway checks of a record's shape before it stores it, beyond the pipeline's own
   * checks (signature, registration, clock, sequence): the reason it is refused
   * (SCHEMA_MISMATCH), or undefined. Plausibility is the validators' judgement, not the gateway's.
   */
  recordShapeProblem(reading: SignedReading, deviceClass: number, blueprint: Blueprint): string | undefined
  /**
   * What is wrong with a blueprint for this use case (its classes' and its own `parameters`, the
   * environment's fields and quality rules), as `path: message` lines; empty when nothing is.
   */
  blueprintProblems?(blueprint: Blueprint): string[]
  /**
   * Its simulated fleet for `depin up`: registers its devices and sends their records until
   * stopped. Without one, `depin up` simulates no devices.
   */
  simulate?(context: SimulationContext): Promise<{ stop(): Promise<void> }>
  /**
   * `depin up`'s simulation flags as options for simulate, checked before anything starts: a
   * ConfigError for what it cannot use. Without it the flags are ignored.
   */
  simulationOptions?(flags: SimulationFlags): Readonly<Record<string, unknown>>
  /** Its own delivery routes (with proofs against the settled roots), beside the shared ones. */
  readonly routes?: readonly UseCaseRoute[]
  /**
   * Its dashboard panel: a browser ES module in its folder, served as `/dashboard/panel.js`, whose
   * `mount(shell)` the dashboard calls once loaded (see web/dashboard.js for what `shell` holds:
   * the map, a section of its own, JSON fetching, the in-browser proof checks, settled epochs).
   */
  readonly dashboardPanel?: URL
}
