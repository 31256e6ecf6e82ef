import { formatUnits, isAddress } from 'viem'
import { aggregateValues } from '../api/aggregateValues.ts'
import { type ProvenReadingJson, verifyProvenReadings } from '../api/verifyProvenReadings.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { ConfigError } from '../errors.ts'
import { askApi } from './askApi.ts'

type QueryOptions = { api: string; rpcUrl: string; dataDir: string; from?: string; to?: string }

/**
 * Checks every reading an answer holds against the chain, trusting neither the API nor its
 * contract addresses (they come from the network's deployment file). Prints the outcome and
 * sets a failing exit status when one does not hold.
 */
async function checkAgainstChain(options: QueryOptions, readings: readonly ProvenReadingJson[]) {
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const { publicClient } = await createChainClients({ rpcUrl: options.rpcUrl })
  const failed = await verifyProvenReadings({
    readings,
    publicClient,
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    epochManager: deployment.contracts.epochManager,
  })
  const epochs = [...new Set(readings.map((r) => BigInt(r.epoch)))].sort((a, b) => (a < b ? -1 : 1))
  if (failed.length === 0) {
    console.log(
      `${readings.length} readings, every proof checked here against the readings roots on-chain${epochs.length ? ` (epochs ${epochs[0]}–${epochs.at(-1)})` : ''}`,
    )
    return true
  }
  for (const f of failed)
    console.log(`NOT VERIFIED: ${f.reading.reading.device} seq ${f.reading.reading.seq}: ${f.why}`)
  console.log(
    `${failed.length} of ${readings.length} readings do not hold against the chain: do not trust this answer`,
  )
  process.exitCode = 1
  return false
}

const windowQuery = (options: QueryOptions) =>
  `${options.from ? `&from=${options.from}` : ''}${options.to ? `&to=${options.to}` : ''}`

/** `depin readings --device …`: a device's settled readings, each proof checked against the chain. */
export async function runReadings(options: QueryOptions & { device: string; limit?: string }): Promise<void> {
  if (!isAddress(options.device))
    throw new ConfigError('INVALID_ADDRESS', `--device ${options.device} is not an address`)
  const answer = await askApi<{ readings: ProvenReadingJson[]; unverifiable: string[] }>(
    options.api,
    `/v1/readings?device=${options.device}&limit=${options.limit ?? 100}${windowQuery(options)}`,
  )
  for (const r of answer.readings) {
    console.log(
      `epoch ${r.epoch} seq ${r.reading.seq} ${new Date(Number(r.reading.time) * 1000).toISOString()} values ${r.reading.values.join(' ')}`,
    )
  }
  if (answer.unverifiable.length > 0) {
    console.log(`left out by the API, which cannot prove them: epochs ${answer.unverifiable.join(', ')}`)
  }
  await checkAgainstChain(options, answer.readings)
}

type AggregateAnswer = {
  area: { cell: string; ring: number; cells: number; devices: number }
  field: { name: string; unit: string; scale: number; index: number }
  count: number
  min?: string
  max?: string
  median?: string
  mean?: string
  readings: ProvenReadingJson[]
}

/**
 * `depin aggregate --field … --lat … --lng …`: an area's aggregate, recomputed here from the
 * readings the API returns with it, each of them checked against the chain.
 */
export async function runAggregate(
  options: QueryOptions & { field: string; lat?: string; lng?: string; cell?: string; ring: string },
): Promise<void> {
  const where = options.cell ? `cell=${options.cell}` : `lat=${options.lat}&lng=${options.lng}`
  if (!options.cell && (options.lat === undefined || options.lng === undefined)) {
    throw new ConfigError('INVALID_QUERY', 'give --cell, or --lat and --lng')
  }
  const answer = await askApi<AggregateAnswer>(
    options.api,
    `/v1/aggregate?field=${encodeURIComponent(options.field)}&${where}&ring=${options.ring}${windowQuery(options)}`,
  )
  const { field } = answer
  const recomputed = aggregateValues(
    answer.readings.map((r) => BigInt(r.reading.values[field.index] as string)),
  )
  const asServed = {
    count: answer.count,
    min: answer.min,
    max: answer.max,
    median: answer.median,
    mean: answer.mean,
  }
  const same =
    recomputed.count === answer.count &&
    (recomputed.count === 0 ||
      ('min' in recomputed &&
        String(recomputed.min) === asServed.min &&
        String(recomputed.max) === asServed.max &&
        String(recomputed.median) === asServed.median &&
        String(recomputed.mean) === asServed.mean))
  const decimal = (v: bigint) => `${formatUnits(v, field.scale)} ${field.unit}`
  console.log(
    `${field.name} within ${answer.area.ring} rings of ${answer.area.cell} (${answer.area.cells} cells, ${answer.area.devices} devices)`,
  )
  console.log(
    'min' in recomputed
      ? `count ${recomputed.count}, min ${decimal(recomputed.min)}, max ${decimal(recomputed.max)}, median ${decimal(recomputed.median)}, mean ${decimal(recomputed.mean)}`
      : 'no readings in this area and window',
  )
  if (!same) {
    console.log(
      `NOT VERIFIED: the API said ${JSON.stringify(asServed)}, its own readings give the figures above`,
    )
    process.exitCode = 1
  } else console.log('recomputed here from the readings returned: the same figures as the API')
  await checkAgainstChain(options, answer.readings)
}
