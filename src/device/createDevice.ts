import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Account, Address } from 'viem'
import { parseScaled } from '../blueprint/blueprintSchema.ts'
import type { Blueprint, DeviceClassRules } from '../blueprint/loadBlueprint.ts'
import { ConfigError } from '../errors.ts'
import { INT64_MAX, INT64_MIN, type SignedReading, UINT64_MAX } from '../readings/reading.ts'
import { isArrayKind, type RecordKind, recordValuesProblem } from '../readings/recordKinds.ts'
import { signRecord } from '../readings/signReading.ts'
import { useCaseOf } from '../usecases/registry.ts'
import { createVerdictVerifier, type DeviceTransportEvent } from './createVerdictVerifier.ts'
import type { GatewayList } from './openGatewayList.ts'
import { openReadingQueue } from './openReadingQueue.ts'
import { openSequenceCounter } from './openSequenceCounter.ts'
import { MAX_READINGS_PER_REQUEST, type ReadingTransport, transportOf } from './postReadings.ts'

export type CreateDeviceParameters = {
  /** The device key; its address is the device id. */
  account: Account
  chainId: number
  /** The DeviceRegistry: the verifying contract of readings. */
  deviceRegistry: Address
  /** Base URL of a gateway, e.g. `http://127.0.0.1:8080`, to send over HTTP (with `gateways`). */
  gatewayUrl?: string
  /**
   * Over HTTP: the gateways whose signed verdicts count (`openGatewayList`: the registry's list
   * over RPC, or fixed addresses). A reading leaves the queue only on a verdict one of them signed.
   */
  gateways?: GatewayList
  /** Over HTTP: told of each answer ignored because it is no listed gateway's verdict on the request. */
  onEvent?: (event: DeviceTransportEvent) => void
  /**
   * How readings reach the gateway instead of HTTP to `gatewayUrl`, e.g. `createMqttTransport(…)`
   * (which checks the verdicts itself).
   */
  transport?: ReadingTransport
  blueprint: Blueprint
  /** The device's class id in the blueprint (its fields give the values' order and scale). */
  deviceClass: number
  /**
   * Where the sequence counter (`<address>.seq`) and the offline queue (`<address>.queue`)
   * live. Omit to keep both in memory: numbers then restart at 1 and the queue dies with the process.
   */
  stateDir?: string
  /** Milliseconds before an HTTP request to the gateway counts as failed (default 10 000). */
  timeoutMs?: number
  /** Unix seconds for readings signed without a time (default: the system clock). */
  clock?: () => bigint
  /** The record kinds the device signs (default: those of the blueprint's use case). */
  kinds?: readonly RecordKind[]
}

/**
 * What a reading measured: fixed-point integers (value × 10^scale) in the blueprint's field
 * order, or decimal strings in the fields' units by field name (`{ temperature: '21.53', … }`),
 * converted exactly.
 */
export type ReadingValues = readonly bigint[] | Readonly<Record<string, string>>

export type SignInput = {
  values: ReadingValues
  /** Unix seconds (default: the clock). */
  time?: bigint
}

export type SignRecordInput = {
  /** The record's kind, by name or index among the device's kinds (default: the first). */
  kind?: string | number
  /** Its values as integers, in the kind's field order (bytes32 as the integer of its 32 bytes). */
  values: readonly bigint[]
  /** Unix seconds (default: the clock). */
  time?: bigint
}

/** What became of one reading in a `send`. */
export type ReadingOutcome =
  | { type: 'accepted'; reading: SignedReading }
  /** Refused by the gateway (bad signature, replay, out of range, …): never resent. */
  | { type: 'rejected'; reading: SignedReading; reason: string; message: string }
  /**
   * Not delivered (gateway unreachable or failing, or no answer that a listed gateway signed for
   * it): kept in the offline queue, sent first next time.
   */
  | { type: 'queued'; reading: SignedReading; message: string }

export type SendReturnType = {
  /** One outcome per reading tried: the previously queued ones first, then the given ones. */
  outcomes: ReadingOutcome[]
  accepted: number
  rejected: number
  /** Readings waiting in the offline queue after this send. */
  queued: number
}

export type Device = {
  address: Address
  deviceClass: DeviceClassRules
  /** The last sequence number used (0n before the first reading). */
  lastSeq(): bigint
  /** Readings waiting in the offline queue. */
  queued(): number
  /**
   * Signs a reading of the class's fields (the first kind, an `int64[]` of them) with the next
   * sequence number, recorded before the reading is returned.
   */
  sign(input: SignInput): Promise<SignedReading>
  /**
   * Signs a record of any of the device's kinds (e.g. connectivity's Beacon or Witness) with the
   * next sequence number, which all its kinds share, recorded before the record is returned.
   */
  signRecord(input: SignRecordInput): Promise<SignedReading>
  /**
   * Posts readings to the gateway, queued ones first (sequence numbers must reach the gateway in
   * increasing order), in requests of at most 500. `send([])` just retries the queue. Sends of
   * one device run one after the other.
   */
  send(readings: readonly SignedReading[]): Promise<SendReturnType>
}

/**
 * A device agent: signs readings with a strictly increasing sequence number and delivers them to
 * a gateway over HTTP (or a given transport), keeping a durable offline queue of what could not
 * be delivered. A reading leaves the queue only on a verdict signed by a listed gateway for
 * exactly that reading (see `createVerdictVerifier`).
 * @example
 * const device = createDevice({ account: loadDeviceKey('device.key'), chainId, deviceRegistry,
 *   gatewayUrl: 'http://127.0.0.1:8080', gateways: openGatewayList({ rpcUrl, deviceRegistry }),
 *   blueprint, deviceClass: 1, stateDir: '.data/device' })
 * const reading = await device.sign({ values: { temperature: '21.5', humidity: '55', pm25: '12.3', pressure: '1013.2' } })
 * const { accepted, queued } = await device.send([reading])
 */
export function createDevice(parameters: CreateDeviceParameters): Device {
  const { account, chainId, deviceRegistry, gatewayUrl, gateways, blueprint, stateDir, timeoutMs } =
    parameters
  const kinds = parameters.kinds ?? useCaseOf(blueprint).recordKinds
  const transport = transportOf({
    transport: parameters.transport,
    gatewayUrl,
    timeoutMs,
    verifier: gateways ? createVerdictVerifier({ chainId, deviceRegistry, gateways, kinds }) : undefined,
    onEvent: parameters.onEvent,
    kinds,
  })
  const found = blueprint.classById.get(parameters.deviceClass)
  if (!found) {
    throw new ConfigError(
      'DEVICE_CLASS_UNKNOWN',
      `blueprint ${blueprint.name} has no device class ${parameters.deviceClass}`,
      {
        details: { deviceClass: parameters.deviceClass },
      },
    )
  }
  const rules: DeviceClassRules = found
  const address = account.address
  if (stateDir !== undefined) mkdirSync(stateDir, { recursive: true, mode: 0o700 })
  const counter = openSequenceCounter(stateDir === undefined ? undefined : join(stateDir, `${address}.seq`))
  const queue = openReadingQueue(
    stateDir === undefined ? undefined : join(stateDir, `${address}.queue`),
    kinds,
  )
  const clock = parameters.clock ?? (() => BigInt(Math.floor(Date.now() / 1000)))
  let sending: Promise<unknown> = Promise.resolve()

  async function sign({ values, time = clock() }: SignInput): Promise<SignedReading> {
    if (!isArrayKind(kinds[0] as RecordKind) || rules.fields.length === 0)
      throw new ConfigError(
        'READING_INVALID',
        `class ${rules.name} has no fields to sign a reading of: sign its records with signRecord`,
      )
    return signAnyRecord({ kind: 0, values: toFixedPoint(rules, values), time })
  }

  async function signAnyRecord({
    kind = 0,
    values,
    time = clock(),
  }: SignRecordInput): Promise<SignedReading> {
    const index = typeof kind === 'number' ? kind : kinds.findIndex((k) => k.name === kind)
    const recordKind = kinds[index]
    if (!recordKind)
      throw new ConfigError(
        'RECORD_KIND_UNKNOWN',
        `no record kind ${kind}: ${kinds.map((k) => k.name).join(', ')}`,
      )
    const problem = recordValuesProblem(recordKind, values)
    if (problem) throw new ConfigError('READING_INVALID', `${recordKind.name}: ${problem}`)
    if (time < 0n || time > UINT64_MAX)
      throw new ConfigError('READING_INVALID', `time ${time} is not a uint64`)
    // the number is taken (and recorded) synchronously, so concurrent calls never share one
    const seq = counter.next()
    return signRecord({
      account,
      chainId,
      deviceRegistry,
      seq,
      time,
      values: [...values],
      kinds,
      kind: index,
    })
  }

  async function deliver(readings: readonly SignedReading[]): Promise<SendReturnType> {
    for (const r of readings) {
      if (r.device.toLowerCase() !== address.toLowerCase()) {
        throw new ConfigError('READING_NOT_THIS_DEVICE', `reading of ${r.device} given to device ${address}`)
      }
    }
    const pending = [...queue.readings(), ...readings]
    const outcomes: ReadingOutcome[] = []
    let sent = 0
    while (sent < pending.length) {
      const chunk = pending.slice(sent, sent + MAX_READINGS_PER_REQUEST)
      const answer = await transport.send(chunk)
      if (answer.type === 'unavailable') {
        // Stop at the first failure: a later chunk delivered before this one would make this
        // one's (lower) sequence numbers look like replays.
        for (const reading of pending.slice(sent))
          outcomes.push({ type: 'queued', reading, message: answer.message })
        break
      }
      chunk.forEach((reading, i) => {
        if (answer.type === 'refused') {
          outcomes.push({ type: 'rejected', reading, reason: answer.code, message: answer.message })
          return
        }
        const result = answer.results[i]
        if (result?.status === 'rejected') {
          outcomes.push({ type: 'rejected', reading, reason: result.reason, message: result.message })
        } else {
          outcomes.push({ type: 'accepted', reading })
        }
      })
      sent += chunk.length
    }
    if (sent === 0) queue.append(readings)
    else if (queue.size() > 0 || sent < pending.length) queue.replace(pending.slice(sent))
    const accepted = outcomes.filter((o) => o.type === 'accepted').length
    const rejected = outcomes.filter((o) => o.type === 'rejected').length
    return { outcomes, accepted, rejected, queued: queue.size() }
  }

  return {
    address,
    deviceClass: rules,
    lastSeq: () => counter.last(),
    queued: () => queue.size(),
    sign,
    signRecord: signAnyRecord,
    send(readings) {
      const result = sending.then(() => deliver(readings))
      sending = result.catch(() => {})
      return result
    },
  }
}

/** Converts a reading's values to the class's fixed-point integers, in field order. */
function toFixedPoint(rules: DeviceClassRules, values: ReadingValues): bigint[] {
  const { fields } = rules
  let fixed: bigint[]
  if (isFixedPoint(values)) {
    if (values.length !== fields.length) {
      throw new ConfigError(
        'READING_INVALID',
        `class ${rules.name} readings have ${fields.length} values (${fields.map((f) => f.name).join(', ')}), got ${values.length}`,
      )
    }
    fixed = [...values]
  } else {
    const unknown = Object.keys(values).filter((name) => !fields.some((f) => f.name === name))
    if (unknown.length > 0) throw new ConfigError('READING_INVALID', `unknown fields: ${unknown.join(', ')}`)
    fixed = fields.map((field) => {
      const value = values[field.name]
      if (value === undefined) throw new ConfigError('READING_INVALID', `missing field ${field.name}`)
      try {
        return parseScaled(value, field.scale)
      } catch (cause) {
        throw new ConfigError('READING_INVALID', `${field.name}: ${(cause as Error).message}`, { cause })
      }
    })
  }
  fixed.forEach((v, i) => {
    if (v < INT64_MIN || v > INT64_MAX) {
      throw new ConfigError('READING_INVALID', `${fields[i]?.name} = ${v} does not fit an int64`)
    }
  })
  return fixed
}

const isFixedPoint = (values: ReadingValues): values is readonly bigint[] => Array.isArray(values)
