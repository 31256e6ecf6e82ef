import { formatUnits, isAddress } from 'viem'
import { aggregateValues } from '../api/aggregateValues.ts'
import { type ProvenReadingJson, verifyProvenReadings } from '../api/verifyProvenReadings.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { depinTokenAbi } from '../chain/generated/contracts.ts'
import { ConfigError, DepinError } from '../errors.ts'
import { createMarketClient, type MarketClient, readEventStream } from '../market/createMarketClient.ts'
import { askApi } from './askApi.ts'
import {
  channelFileState,
  channelPath,
  createdKeyLine,
  formatTokens,
  loadConsumerKey,
} from './consumerKey.ts'

type QueryOptions = {
  api: string
  rpcUrl: string
  dataDir: string
  from?: string
  to?: string
  /** Pay through the data market with this consumer's key (its channel files next to it). */
  consumerKeyFile?: string
  /** Take the provider's word for the channel when it is ahead of the consumer's record. */
  acceptProviderChannel?: boolean
}

/**
 * An answer of the API; a paid one with `settle`, which posts the voucher for everything received
 * and returns the line saying what it cost (for stderr).
 */
type Answer<T> = { body: T; settle?: () => Promise<string> }

/**
 * Asks the API for `path`: for free, or, with a consumer key, paying through the data market
 * (createMarketClient: it signs in, pays with a voucher, checks every proof, the price and the
 * commitment before it signs again), then settling so that the provider holds a voucher for
 * everything received. An API that charges, asked without a key, is PAYMENT_REQUIRED.
 */
async function ask<T>(
  options: QueryOptions,
  path: string,
  item: 'reading' | 'aggregate',
  accept?: (body: T) => string | undefined,
): Promise<Answer<T>> {
  if (!options.consumerKeyFile) {
    if (options.acceptProviderChannel)
      throw new ConfigError('INVALID_OPTIONS', '--accept-provider-channel needs --consumer-key-file')
    try {
      return { body: await askApi<T>(options.api, path) }
    } catch (error) {
      if (error instanceof DepinError && error.details.paid === true) {
        throw new ConfigError(
          'PAYMENT_REQUIRED',
          `the API at ${options.api} charges for ${path.split('?')[0]} (it answered ${error.details.status} ${error.code}): pass --consumer-key-file FILE to pay from that key's deposit on the DataMarket (\`depin market deposit AMOUNT --consumer-key-file FILE\`)`,
          { cause: error },
        )
      }
      throw error
    }
  }
  return askPaying<T>(options, options.consumerKeyFile, path, item, accept)
}

async function askPaying<T>(
  options: QueryOptions,
  keyFile: string,
  path: string,
  item: 'reading' | 'aggregate',
  accept: ((body: T) => string | undefined) | undefined,
): Promise<Answer<T>> {
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const { account, created } = loadConsumerKey(keyFile)
  if (created) console.error(createdKeyLine(keyFile, account.address))
  const { publicClient } = await createChainClients({ rpcUrl: options.rpcUrl })
  const client: MarketClient = createMarketClient({
    apiUrl: options.api,
    account,
    publicClient,
    deployment,
    state: channelFileState(keyFile, () => client.market()?.provider),
    acceptProviderChannel: options.acceptProviderChannel ?? false,
  })
  let answer: Awaited<ReturnType<MarketClient['get']>>
  try {
    answer = await client.get(path, item, accept && ((body) => accept(body as T)))
  } catch (error) {
    throw explainMarketError(error, options, keyFile)
  }
  const { paid } = answer
  const settle = async () => {
    try {
      await client.settle()
    } catch (error) {
      throw explainMarketError(error, options, keyFile)
    }
    const market = client.market() as NonNullable<ReturnType<MarketClient['market']>>
    const symbol = await publicClient.readContract({
      address: deployment.contracts.depinToken,
      abi: depinTokenAbi,
      functionName: 'symbol',
    })
    const tokens = (amount: bigint) => formatTokens(amount, symbol)
    const count = ((answer.body.readings ?? []) as unknown[]).length
    const what =
      item === 'aggregate'
        ? `an aggregate of ${count} readings`
        : `${count} readings (${tokens(market.prices.reading)} each)`
    return `paid ${tokens(paid.price)} for ${what} to provider ${market.provider}; cumulative ${tokens(paid.owed)} for ${paid.servedCount} readings, settled with a voucher (channel ${channelPath(keyFile, market.provider)})`
  }
  return { body: answer.body as T, settle }
}

/** The market client's refusals, with what the user can do about them. */
function explainMarketError(error: unknown, options: QueryOptions, keyFile: string): unknown {
  if (error instanceof TypeError && !(error instanceof DepinError)) {
    return new ConfigError(
      'API_UNREACHABLE',
      `no depin API answers at ${options.api}: is \`depin up\` running?`,
      {
        cause: error,
      },
    )
  }
  if (!(error instanceof DepinError)) return error
  const hints: Record<string, string> = {
    DEPOSIT_INSUFFICIENT: `\`depin market deposit AMOUNT --consumer-key-file ${keyFile}\` adds to it (\`depin market balance\` shows it)`,
    ...(options.acceptProviderChannel
      ? {}
      : {
          VOUCHER_STALE:
            'the provider counts an answer this consumer has no record of (a lost channel file, or another run with the same key): --accept-provider-channel takes its word for it, paying at most that answer unverified',
        }),
  }
  const hint = hints[error.code]
  return hint
    ? new DepinError(error.code, `${error.message}; ${hint}`, { details: error.details, cause: error })
    : error
}

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
  const { body: answer, settle } = await ask<{ readings: ProvenReadingJson[]; unverifiable: string[] }>(
    options,
    `/v1/readings?device=${options.device}&limit=${options.limit ?? 100}${windowQuery(options)}`,
    'reading',
  )
  for (const r of answer.readings) {
    console.log(
      `epoch ${r.epoch} seq ${r.reading.seq} ${new Date(Number(r.reading.time) * 1000).toISOString()} values ${r.reading.values.join(' ')}`,
    )
  }
  if (answer.unverifiable.length > 0) {
    console.log(`left out by the API, which cannot prove them: epochs ${answer.unverifiable.join(', ')}`)
  }
  // a paid answer's proofs were checked before it counted as received: settle for it
  if (settle) console.error(await settle())
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

/** An aggregate recomputed from the readings it came with, and whether the API's figures are those. */
function recompute(answer: AggregateAnswer) {
  const recomputed = aggregateValues(
    answer.readings.map((r) => BigInt(r.reading.values[answer.field.index] as string)),
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
  return { recomputed, asServed, same }
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
  // a paid answer whose figures do not follow from its readings is refused before it counts as received
  const { body: answer, settle } = await ask<AggregateAnswer>(
    options,
    `/v1/aggregate?field=${encodeURIComponent(options.field)}&${where}&ring=${options.ring}${windowQuery(options)}`,
    'aggregate',
    (body) => (recompute(body).same ? undefined : "the aggregate's figures do not follow from its readings"),
  )
  const { field } = answer
  const { recomputed, asServed, same } = recompute(answer)
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
  } else {
    console.log('recomputed here from the readings returned: the same figures as the API')
    if (settle) console.error(await settle())
  }
  await checkAgainstChain(options, answer.readings)
}

/**
 * `depin stream --device …` (or an area): settled epochs as they come, with the readings of them
 * asked for, each proof checked here against the chain; with `--consumer-key-file`, paid per
 * streamed reading through the data market (each part checked before its voucher is signed).
 * Stops after `--epochs` epochs, or on Ctrl-C.
 */
export async function runStream(
  options: QueryOptions & {
    device?: string
    lat?: string
    lng?: string
    cell?: string
    ring: string
    since?: string
    epochs?: string
  },
): Promise<void> {
  if (options.device !== undefined && !isAddress(options.device))
    throw new ConfigError('INVALID_ADDRESS', `--device ${options.device} is not an address`)
  const epochs = options.epochs === undefined ? undefined : Number(options.epochs)
  if (epochs !== undefined && (!Number.isInteger(epochs) || epochs < 1))
    throw new ConfigError('INVALID_OPTIONS', `--epochs ${options.epochs} is not a positive integer`)
  const where = options.device
    ? `device=${options.device}`
    : options.cell
      ? `cell=${options.cell}&ring=${options.ring}`
      : options.lat !== undefined && options.lng !== undefined
        ? `lat=${options.lat}&lng=${options.lng}&ring=${options.ring}`
        : undefined
  if (!where) throw new ConfigError('INVALID_QUERY', 'give --device, --cell, or --lat and --lng')
  const path = `/v1/stream?${where}${options.since !== undefined ? `&since=${options.since}` : ''}`
  const controller = new AbortController()
  const onSignal = () => controller.abort()
  process.once('SIGINT', onSignal)
  let seen = 0
  /** Prints a part, checks its proofs; true when the stream has given all that was asked. */
  const show = async (epoch: Record<string, unknown>, readings: readonly ProvenReadingJson[]) => {
    console.log(
      `epoch ${String(epoch.epoch)} settled in tx ${String(epoch.txHash)}: ${readings.length} readings`,
    )
    for (const r of readings) {
      console.log(
        `epoch ${r.epoch} seq ${r.reading.seq} ${new Date(Number(r.reading.time) * 1000).toISOString()} device ${r.reading.device} values ${r.reading.values.join(' ')}`,
      )
    }
    if (readings.length > 0) await checkAgainstChain(options, readings)
    seen++
    if (epochs !== undefined && seen >= epochs) controller.abort()
  }
  try {
    if (options.consumerKeyFile)
      await streamPaying(options, options.consumerKeyFile, path, show, controller.signal)
    else await streamFree(options, path, show, controller.signal)
  } finally {
    process.off('SIGINT', onSignal)
  }
}

type ShowPart = (epoch: Record<string, unknown>, readings: readonly ProvenReadingJson[]) => Promise<void>

async function streamFree(options: QueryOptions, path: string, show: ShowPart, signal: AbortSignal) {
  let response: Response
  try {
    response = await fetch(`${options.api}${path}`, { signal, headers: { accept: 'text/event-stream' } })
  } catch (error) {
    if (signal.aborted) return
    throw new ConfigError(
      'API_UNREACHABLE',
      `no depin API answers at ${options.api}: is \`depin up\` running?`,
      {
        cause: error,
      },
    )
  }
  if (response.status === 401 || response.status === 402) {
    const body = (await response.json()) as { error: { code: string } }
    throw new ConfigError(
      'PAYMENT_REQUIRED',
      `the API at ${options.api} charges for streamed readings (it answered ${response.status} ${body.error.code}): pass --consumer-key-file FILE to pay from that key's deposit on the DataMarket`,
    )
  }
  if (!response.ok) throw new DepinError('API_ERROR', `${path}: ${response.status} ${await response.text()}`)
  // a free stream: each epoch's readings follow it; a part is complete at the next epoch
  let part: { epoch: Record<string, unknown>; readings: ProvenReadingJson[] } | undefined
  await readEventStream(
    response,
    async (event, data) => {
      if (event === 'epoch') {
        if (part) await show(part.epoch, part.readings)
        part = { epoch: data as Record<string, unknown>, readings: [] }
      } else if (event === 'reading') part?.readings.push(data as ProvenReadingJson)
      else if (event === 'error') {
        const e = data as { code: string; message: string }
        throw new DepinError(e.code, e.message)
      }
    },
    signal,
  )
  if (part && !signal.aborted) await show(part.epoch, part.readings)
}

async function streamPaying(
  options: QueryOptions,
  keyFile: string,
  path: string,
  show: ShowPart,
  signal: AbortSignal,
) {
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const { account, created } = loadConsumerKey(keyFile)
  if (created) console.error(createdKeyLine(keyFile, account.address))
  const { publicClient } = await createChainClients({ rpcUrl: options.rpcUrl })
  const client: MarketClient = createMarketClient({
    apiUrl: options.api,
    account,
    publicClient,
    deployment,
    state: channelFileState(keyFile, () => client.market()?.provider),
    acceptProviderChannel: options.acceptProviderChannel ?? false,
  })
  const symbol = await publicClient.readContract({
    address: deployment.contracts.depinToken,
    abi: depinTokenAbi,
    functionName: 'symbol',
  })
  const tokens = (amount: bigint) => formatTokens(amount, symbol)
  try {
    await client.stream(
      path,
      async ({ epoch, readings, paid }) => {
        if (paid)
          console.error(
            `paid ${tokens(paid.price)} for ${readings.length} streamed readings; cumulative ${tokens(paid.owed)} for ${paid.servedCount} readings, settled with a voucher`,
          )
        await show(epoch, readings)
      },
      { signal },
    )
  } catch (error) {
    if (signal.aborted && !(error instanceof DepinError)) return
    throw explainMarketError(error, options, keyFile)
  }
}
