import { connectChain } from '../chain/connectChain.ts'
import { ensureDeployed, readNetworkParameters } from '../chain/ensureDeployed.ts'

export type DeployOptions = {
  dataDir: string
  rpcUrl?: string
  keyFile?: string
  params?: string
  force: boolean
}

/** `depin deploy`: deploys the protocol (or reuses the data dir's live deployment) and prints the addresses. */
export async function runDeploy(options: DeployOptions): Promise<void> {
  const parameters = options.params ? readNetworkParameters(options.params) : undefined
  const chain = await connectChain({
    dataDir: options.dataDir,
    ...(options.rpcUrl ? { rpcUrl: options.rpcUrl } : {}),
    ...(options.keyFile ? { keyFile: options.keyFile } : {}),
  })
  try {
    console.log(`chain ${chain.chain.id} at ${chain.rpcUrl}${chain.anvil ? ' (embedded anvil)' : ''}`)
    const { deployment, path } = await ensureDeployed({
      clients: chain,
      dataDir: options.dataDir,
      ...(parameters ? { parameters } : {}),
      force: options.force,
      onProgress: (line) => console.log(`  ${line}`),
    })
    for (const [name, address] of Object.entries(deployment.contracts))
      console.log(`${name.padEnd(18)} ${address}`)
    console.log(`deployment: ${path}`)
  } finally {
    await chain.close()
  }
}
