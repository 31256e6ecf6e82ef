import { connectChain } from '../chain/connectChain.ts'
import { ensureDeployed } from '../chain/ensureDeployed.ts'
import { getReadOnlyContracts } from '../chain/getContracts.ts'

export type UpOptions = { dataDir: string; port: string }

/**
 * `depin up`: runs the network embedded in this process until Ctrl-C. Today: the chain (anvil,
 * state kept in the data dir) with the protocol deployed; the gateway, validators, indexer and
 * simulated fleet join it as they land.
 */
export async function runUp(options: UpOptions): Promise<void> {
  const chain = await connectChain({ dataDir: options.dataDir, port: Number(options.port) })
  const { deployment, deployed } = await ensureDeployed({
    clients: chain,
    dataDir: options.dataDir,
    onProgress: (line) => console.log(`  ${line}`),
  })
  const contracts = getReadOnlyContracts(chain, deployment)
  const [epoch, devices, validators] = await Promise.all([
    contracts.epochManager.read.currentEpoch(),
    contracts.deviceRegistry.read.activeDevices(),
    contracts.validatorSet.read.activeCount(),
  ])
  console.log(
    `${deployed ? 'started a new' : 'resumed the'} network: chain ${deployment.chainId} at ${chain.rpcUrl}, epoch ${epoch}, ${devices} devices, ${validators} validators`,
  )
  console.log('running; press Ctrl-C to stop')
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  console.log('stopping: saving chain state…')
  await chain.close()
  console.log('stopped')
}
