import { loadBlueprint, networkParametersOf } from '../blueprint/loadBlueprint.ts'
import { connectChain } from '../chain/connectChain.ts'
import { ensureDeployed, readNetworkParameters } from '../chain/ensureDeployed.ts'
import { DepinError } from '../errors.ts'

export type DeployOptions = {
  dataDir: string
  blueprint: string
  rpcUrl?: string
  keyFile?: string
  params?: string
  force: boolean
}

/** `depin deploy`: deploys the protocol (or reuses the data dir's live deployment) and prints the addresses. */
export async function runDeploy(options: DeployOptions): Promise<void> {
  // the blueprint's rules are pinned whatever the parameters: validators run that blueprint
  const blueprint = loadBlueprint(options.blueprint)
  const parameters = options.params
    ? { ...readNetworkParameters(options.params), rulesHash: blueprint.rulesHash }
    : networkParametersOf(blueprint)
  const chain = await connectChain({
    dataDir: options.dataDir,
    ...(options.rpcUrl ? { rpcUrl: options.rpcUrl } : {}),
    ...(options.keyFile ? { keyFile: options.keyFile } : {}),
  })
  try {
    console.log(`chain ${chain.chain.id} at ${chain.rpcUrl}${chain.anvil ? ' (embedded anvil)' : ''}`)
    const { deployment, path, deployed } = await ensureDeployed({
      clients: chain,
      dataDir: options.dataDir,
      parameters,
      force: options.force,
      onProgress: (line) => console.log(`  ${line}`),
    })
    // a live deployment reused: it must pin this blueprint's rules, or its validators would all stop
    if (!deployed && deployment.rulesHash !== undefined && deployment.rulesHash !== blueprint.rulesHash) {
      throw new DepinError(
        'RULES_MISMATCH',
        `${path} pins rules hash ${deployment.rulesHash}, not ${blueprint.rulesHash} (${options.blueprint}): new rules are a new network (\`depin deploy --force\`)`,
      )
    }
    for (const [name, address] of Object.entries(deployment.contracts))
      console.log(`${name.padEnd(18)} ${address}`)
    console.log(`rules hash: ${deployment.rulesHash} (${options.blueprint}, use case ${blueprint.useCase})`)
    console.log(`deployment: ${path}`)
  } finally {
    await chain.close()
  }
}
