#!/usr/bin/env node
/**
 * The `depin` command. Verbs:
 *   deploy   deploy the protocol contracts (embedded anvil by default, or --rpc-url)
 *   up       run the network embedded: chain + contracts, until Ctrl-C
 */
import { Command } from 'commander'
import { DepinError } from '../errors.ts'
import { runDeploy } from './deploy.ts'
import { runUp } from './up.ts'

const program = new Command()
  .name('depin')
  .description('Launch and run a decentralized physical infrastructure network')
  .showHelpAfterError()

program
  .command('deploy')
  .description('deploy the protocol contracts and write <data-dir>/deployment.json')
  .option('--data-dir <dir>', 'where the network keeps its state', '.data')
  .option('--rpc-url <url>', 'an EVM JSON-RPC endpoint (default: an embedded anvil in the data dir)')
  .option('--key-file <file>', 'deployer private key file, mode 0600 (or set DEPIN_PRIVATE_KEY)')
  .option('--params <file>', 'network parameters JSON (default: built-in local parameters)')
  .option('--force', 'deploy a new network even if the data dir already has one', false)
  .action(runDeploy)

program
  .command('up')
  .description('run the network embedded until Ctrl-C: chain and contracts (reuses the data dir)')
  .option('--data-dir <dir>', 'where the network keeps its state', '.data')
  .option('--port <port>', 'port of the embedded chain RPC', '8545')
  .action(runUp)

program.parseAsync().catch((error: unknown) => {
  if (error instanceof DepinError) {
    console.error(`error ${error.code}: ${error.message}`)
  } else {
    console.error(error)
  }
  process.exit(1)
})
