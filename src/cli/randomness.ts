import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { epochRandomness, reportsFromLogs } from '../chain/epochRandomness.ts'
import { getReadOnlyContracts } from '../chain/getContracts.ts'
import { ConfigError } from '../errors.ts'

export type RandomnessOptions = {
  epoch: string
  rpcUrl: string
  dataDir: string
  print?: (line: string) => void
}

/**
 * `depin randomness --epoch N`: the epoch's randomness recomputed from the chain alone (its
 * blocks and the EpochManager's logs; nothing from the API or a validator), with its inputs.
 */
export async function runRandomness(options: RandomnessOptions): Promise<void> {
  const print = options.print ?? console.log
  if (!/^\d+$/.test(options.epoch))
    throw new ConfigError('INVALID_EPOCH', `--epoch ${options.epoch} is not an epoch`)
  const epoch = BigInt(options.epoch)
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const clients = await createChainClients({ rpcUrl: options.rpcUrl })
  const rulesHash = await getReadOnlyContracts(clients, deployment).epochManager.read.rulesHash()
  const randomness = await epochRandomness({
    publicClient: clients.publicClient,
    deployment,
    rulesHash,
    epoch,
    lastReportBefore: reportsFromLogs(clients.publicClient, deployment),
  })
  if (!randomness) {
    print(`epoch ${epoch} has not started on-chain yet: its randomness is not known to anyone`)
    process.exitCode = 1
    return
  }
  print(`epoch ${epoch} randomness ${randomness.value}`)
  print(
    `  last block before its start: #${randomness.block.number} ${randomness.block.hash} (time ${randomness.block.timestamp})`,
  )
  print(
    randomness.previousReport
      ? `  last report settled before its start: epoch ${randomness.previousReport.epoch}, digest ${randomness.previousReport.digest}`
      : '  no report had settled before its start',
  )
}
