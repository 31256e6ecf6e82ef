import { getAddress, isAddress } from 'viem'
import { type ProvenReadingJson, verifyProvenReadings } from '../api/verifyProvenReadings.ts'
import { type ProvenReceiptJson, verifyProvenReceipts } from '../api/verifyProvenReceipts.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { ConfigError } from '../errors.ts'
import { useCaseOf } from '../usecases/registry.ts'
import { askApi } from './askApi.ts'

export type ReceiptsOptions = {
  device: string
  api: string
  rpcUrl: string
  dataDir: string
  limit?: string
  before?: string
  /** Where the command's lines go (default: stdout). */
  print?: (line: string) => void
}

type ReceiptsAnswer = { receipts: ProvenReceiptJson[]; unverifiable: string[]; registered: boolean }

/** Most accepted readings asked for per epoch, to count them against a receipt. */
const READINGS_PER_EPOCH = 1_000

/**
 * `depin receipts --device …`: why a device earned what it earned, epoch by epoch, in plain
 * words; each receipt checked here, trusting neither the API nor its contract addresses (they come
 * from the network's deployment file): its proof against the receipts root of the epoch's
 * ReportAccepted event on-chain, its numbers against each other and the use case's weighting, and
 * its accepted count against the device's accepted readings the API serves with proofs against
 * the readings root on-chain. Sets a failing exit status when one does not hold.
 */
export async function runReceipts(options: ReceiptsOptions): Promise<void> {
  const print = options.print ?? console.log
  if (!isAddress(options.device))
    throw new ConfigError('INVALID_ADDRESS', `--device ${options.device} is not an address`)
  const device = getAddress(options.device)
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const status = await askApi<{ useCase: string }>(options.api, '/v1/status')
  const useCase = useCaseOf(status)
  const answer = await askApi<ReceiptsAnswer>(
    options.api,
    `/v1/devices/${device}/receipts?limit=${options.limit ?? 5}${options.before ? `&before=${options.before}` : ''}`,
  )
  if (answer.receipts.length === 0) {
    print(
      answer.registered
        ? `no receipts for ${device}: it sent nothing in the settled epochs the API holds`
        : `no receipts for ${device}: it is not a registered device`,
    )
  }
  const { publicClient } = await createChainClients({ rpcUrl: options.rpcUrl })
  const failed = new Map(
    (
      await verifyProvenReceipts({
        receipts: answer.receipts,
        device,
        publicClient,
        epochManager: deployment.contracts.epochManager,
        fromBlock: deployment.startBlock,
        useCase,
      })
    ).map((f) => [f.receipt, f.why]),
  )
  for (const proven of answer.receipts) {
    print(proven.explanation)
    const why = failed.get(proven) ?? (await acceptedCountProblem(proven))
    if (why) {
      failed.set(proven, why)
      print(`  NOT VERIFIED: ${why}`)
    } else
      print(
        `  verified: in the receipts root of epoch ${proven.epoch} on-chain; its numbers add up; its ${proven.receipt.accepted} accepted readings are proven against the readings root`,
      )
  }
  if (answer.unverifiable.length > 0)
    print(`left out by the API, which cannot prove them: epochs ${answer.unverifiable.join(', ')}`)
  if (failed.size > 0) {
    print(
      `${failed.size} of ${answer.receipts.length} receipts do not hold against the chain: do not trust them`,
    )
    process.exitCode = 1
  }

  /** Whether the API serves, with valid proofs, as many accepted readings of the epoch as the receipt counts. */
  async function acceptedCountProblem(proven: ProvenReceiptJson): Promise<string | undefined> {
    const epoch = BigInt(proven.epoch)
    const from = deployment.genesisTime + epoch * deployment.epochLength
    const readings = await askApi<{ readings: ProvenReadingJson[] }>(
      options.api,
      `/v1/readings?device=${device}&from=${from}&to=${from + deployment.epochLength}&limit=${READINGS_PER_EPOCH}`,
    )
    const ofEpoch = readings.readings.filter((r) => r.epoch === proven.epoch)
    if (ofEpoch.length >= READINGS_PER_EPOCH) return undefined // too many to count in one answer
    const bad = await verifyProvenReadings({
      readings: ofEpoch,
      publicClient,
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      epochManager: deployment.contracts.epochManager,
      kinds: useCase.recordKinds,
    })
    const proved = ofEpoch.length - bad.length
    if (proved !== proven.receipt.accepted)
      return `the receipt counts ${proven.receipt.accepted} accepted readings, the API proves ${proved} of them`
    return undefined
  }
}
