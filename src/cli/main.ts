#!/usr/bin/env node
/**
 * The `depin` command. Verbs:
 *   deploy   deploy the protocol contracts (embedded anvil by default, or --rpc-url)
 *   up       run the whole network embedded until Ctrl-C
 *   claim    claim an owner's rewards
 *   market deposit|balance|withdraw   a data consumer's deposit on the DataMarket
 *   receipts why a device earned what it earned, checked against the chain
 *   randomness an epoch's randomness, from the chain alone
 *   status   epochs, devices and validators' liveness
 *   gateway list|set|remove   the registry's gateway list
 *   validator run   one validator as its own process
 *   validator protection export|import   move a validator's slashing-protection record
 */
import { Command, Option } from 'commander'
import { DepinError } from '../errors.ts'
import { runClaim } from './claim.ts'
import { runDeploy } from './deploy.ts'
import { runDeviceInit, runDeviceSend } from './device.ts'
import { runGatewayList, runGatewayRemove, runGatewaySet } from './gateway.ts'
import { runGatewayProcess } from './gatewayRun.ts'
import { runMarketBalance, runMarketDeposit, runMarketWithdraw } from './market.ts'
import { runAggregate, runReadings, runStream } from './query.ts'
import { runRandomness } from './randomness.ts'
import { runReceipts } from './receipts.ts'
import { runStatus } from './status.ts'
import { runUp } from './up.ts'
import { runProtectionExport, runProtectionImport } from './validatorProtection.ts'
import { runValidator } from './validatorRun.ts'

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
  .option(
    '--blueprint <file>',
    'network definition: its parameters, and its rules pinned on-chain',
    'blueprints/environment.yaml',
  )
  .option('--params <file>', "network parameters JSON instead of the blueprint's (its rules stay pinned)")
  .option('--force', 'deploy a new network even if the data dir already has one', false)
  .action(runDeploy)

program
  .command('up')
  .description('run the whole network in one process until Ctrl-C (a second run resumes the data dir)')
  .option('--data-dir <dir>', 'where the network keeps its state', '.data')
  .option(
    '--blueprint <file>',
    'network definition: a file, or a name of blueprints/ (environment, connectivity)',
    'blueprints/environment.yaml',
  )
  .option('--port <port>', 'port of the embedded chain RPC', '8545')
  .option('--gateway-port <port>', 'port of the gateway (POST /v1/readings)', '8546')
  .option('--api-port <port>', 'port of the API', '8547')
  .option('--mqtt-port <port>', 'port of the embedded MQTT broker', '8548')
  .option(
    '--mqtt-url <url>',
    'an external MQTT broker instead of the embedded one (e.g. mqtt://127.0.0.1:1883)',
  )
  .addOption(
    new Option('--fleet-transport <transport>', 'how the simulated stations send their readings')
      .choices(['mqtt', 'http'])
      .default('mqtt'),
  )
  .option('--stations <n>', 'simulated weather stations', '50')
  .option('--validators <n>', 'validators, each with its own key and store', '3')
  .option('--seed <n>', 'seed of the simulated fleet', '1')
  .option(
    '--faults <mix>',
    'faulty stations: kind=count,… (stuck, outOfRange, drift, liar, replay, forged, clockSkew) or none',
    'stuck=1,outOfRange=1,liar=1,replay=1,forged=1,clockSkew=1',
  )
  .option('--no-validator-processes', 'run the validators inside this process instead of one process each')
  .option(
    '--no-market',
    "serve the API for free instead of as the data market's provider (where the blueprint has a market)",
  )
  .action(runUp)

program
  .command('claim')
  .description("claim an owner's rewards with the proof the API serves")
  .requiredOption('--owner <address>', 'the account whose rewards to claim (tokens always go to it)')
  .option('--api <url>', 'the depin API', 'http://127.0.0.1:8547')
  .option('--rpc-url <url>', 'the chain', 'http://127.0.0.1:8545')
  .option('--data-dir <dir>', 'the data dir holding deployment.json', '.data')
  .option('--key-file <file>', 'key paying the gas, mode 0600 (default on a local chain: anvil test key 0)')
  .action(runClaim)

program
  .command('receipts')
  .description(
    'why a device earned what it earned, per epoch in plain words, each receipt checked here against the chain',
  )
  .requiredOption('--device <address>', 'the device')
  .option('--limit <n>', 'most recent epochs', '5')
  .option('--before <epoch>', 'only epochs before this one')
  .option('--api <url>', 'the depin API', 'http://127.0.0.1:8547')
  .option('--rpc-url <url>', 'the chain, to check the proofs against', 'http://127.0.0.1:8545')
  .option('--data-dir <dir>', "the data dir holding the network's deployment.json", '.data')
  .action(runReceipts)

program
  .command('randomness')
  .description("an epoch's randomness, recomputed from the chain alone, with its inputs")
  .requiredOption('--epoch <n>', 'the epoch')
  .option('--rpc-url <url>', 'the chain', 'http://127.0.0.1:8545')
  .option('--data-dir <dir>', "the data dir holding the network's deployment.json", '.data')
  .action(runRandomness)

program
  .command('status')
  .description(
    "the network at a glance: epochs, devices, each validator's stake, last signed epoch and liveness",
  )
  .option('--api <url>', 'the depin API', 'http://127.0.0.1:8547')
  .action(runStatus)

const gateway = program
  .command('gateway')
  .description("run a gateway, or change the registry's gateway list, from which validators fetch batches")
const chainOptions = (command: Command) =>
  command
    .option('--rpc-url <url>', 'the chain', 'http://127.0.0.1:8545')
    .option('--data-dir <dir>', 'the data dir holding deployment.json', '.data')
    .option('--key-file <file>', "governance's key, mode 0600 (default on a local chain: anvil test key 0)")
chainOptions(gateway.command('list').description('the listed gateways and their URLs')).action(runGatewayList)
chainOptions(
  gateway
    .command('set')
    .description('list a gateway, or change its URL')
    .requiredOption('--id <address>', "the gateway's id (its operator's address)")
    .requiredOption('--url <url>', 'where validators fetch its sealed batches'),
).action(runGatewaySet)
chainOptions(
  gateway
    .command('remove')
    .description('take a gateway off the list')
    .requiredOption('--id <address>', "the gateway's id"),
).action(runGatewayRemove)
gateway
  .command('run')
  .description('run a gateway: POST /v1/readings, MQTT ingest, sealed batches for the validators')
  .requiredOption('--config <file>', 'gateway config JSON (see src/cli/gatewayRun.ts)')
  .action(runGatewayProcess)

const queryOptions = (command: Command) =>
  askOptions(
    command
      .option('--from <unix seconds>', 'start of the window (default: an hour before --to)')
      .option('--to <unix seconds>', 'end of the window, excluded (default: now)'),
  )
const askOptions = (command: Command) =>
  command
    .option('--api <url>', 'the depin API', 'http://127.0.0.1:8547')
    .option('--rpc-url <url>', 'the chain, to check the proofs against', 'http://127.0.0.1:8545')
    .option('--data-dir <dir>', "the data dir holding the network's deployment.json", '.data')
    .option(
      '--consumer-key-file <file>',
      "pay an API that charges, from this consumer's deposit (created with mode 0600 if missing; its channel files sit next to it)",
    )
    .option(
      '--accept-provider-channel',
      "take the provider's word for the channel when it is ahead of the consumer's record (pays at most one answer unverified)",
    )
queryOptions(
  program
    .command('readings')
    .description("a device's settled readings, each proof checked here against the chain")
    .requiredOption('--device <address>', 'the device')
    .option('--limit <n>', 'most readings', '100'),
).action(runReadings)
queryOptions(
  program
    .command('aggregate')
    .description(
      "an area's aggregate of a field, recomputed here, its readings' proofs checked against the chain",
    )
    .requiredOption('--field <name>', 'a field of the device class, e.g. temperature')
    .option('--lat <degrees>', 'centre of the area (with --lng)')
    .option('--lng <degrees>', 'centre of the area (with --lat)')
    .option('--cell <h3>', 'centre of the area as an H3 cell, instead of --lat/--lng')
    .option('--ring <k>', 'rings of cells around the centre', '1'),
).action(runAggregate)

askOptions(
  program
    .command('stream')
    .description(
      "settled epochs as they come, with a device's or an area's readings, each proof checked here against the chain",
    )
    .option('--device <address>', 'the device')
    .option('--lat <degrees>', 'centre of the area (with --lng)')
    .option('--lng <degrees>', 'centre of the area (with --lat)')
    .option('--cell <h3>', 'centre of the area as an H3 cell, instead of --lat/--lng')
    .option('--ring <k>', 'rings of cells around the centre', '1')
    .option(
      '--since <epoch>',
      'the last epoch you have: the stream starts after it (default: the next to settle)',
    )
    .option('--epochs <n>', 'stop after this many epochs (default: until Ctrl-C)'),
).action(runStream)

const market = program
  .command('market')
  .description(
    "a data consumer's deposit on the DataMarket, from which providers are paid for proven readings",
  )
const marketOptions = (command: Command) =>
  command
    .requiredOption(
      '--consumer-key-file <file>',
      "the consumer's key (created with mode 0600 if missing; nothing funds it but you)",
    )
    .option('--rpc-url <url>', 'the chain', 'http://127.0.0.1:8545')
    .option('--data-dir <dir>', 'the data dir holding deployment.json', '.data')
marketOptions(
  market
    .command('deposit')
    .description("add tokens of the consumer's wallet to its deposit (approving the market first)")
    .argument('<amount>', 'whole tokens, e.g. 5 or 0.25'),
).action((amount: string, options: Parameters<typeof runMarketDeposit>[1]) =>
  runMarketDeposit(amount, options),
)
marketOptions(
  market
    .command('balance')
    .description('the deposit, an announced withdrawal and when it is due, the wallet, the channels kept'),
).action(runMarketBalance)
marketOptions(
  market
    .command('withdraw')
    .description('take the announced withdrawal once due; with --request, announce one')
    .option('--request <amount>', "announce a withdrawal of this many tokens (due after the market's delay)"),
).action(runMarketWithdraw)

const device = program
  .command('device')
  .description('this machine as a device: a key, a registration, signed readings')
const deviceOptions = (command: Command) =>
  command
    .option(
      '--key-file <file>',
      'the device key (created with mode 0600 by init)',
      '.data/devices/device.key',
    )
    .option('--data-dir <dir>', 'the data dir holding deployment.json', '.data')
    .option('--blueprint <file>', 'network definition', 'blueprints/environment.yaml')
    .option('--class <id>', "device class (default: the blueprint's first)")
deviceOptions(
  device
    .command('init')
    .description('create the device key and register the device where it stands')
    .requiredOption('--lat <degrees>', 'latitude of the device')
    .requiredOption('--lng <degrees>', 'longitude of the device')
    .option('--rpc-url <url>', 'the chain', 'http://127.0.0.1:8545')
    .option(
      '--owner-key-file <file>',
      "the owner's key, mode 0600 (default on a local chain: anvil test key 0)",
    ),
).action(runDeviceInit)
deviceOptions(
  device
    .command('send')
    .description('sign one reading and send it (queued ones first); exit 1 if rejected, 3 if queued')
    .requiredOption(
      '--values <list>',
      'field=value,… in the class units, e.g. temperature=21.5,humidity=55,pm25=12.3,pressure=1013.2',
    )
    .option('--gateway <url>', 'the gateway, over HTTP', 'http://127.0.0.1:8546')
    .option('--mqtt-url <url>', 'send through this MQTT broker instead of HTTP')
    .option('--state-dir <dir>', 'sequence counter and offline queue (default <data-dir>/devices)'),
).action(runDeviceSend)

const validator = program.command('validator').description('run a validator, or move its signing record')
validator
  .command('run')
  .description('run a validator: its own key, store, indexer and report exchange (GET/POST /v1/reports)')
  .requiredOption('--config <file>', 'validator config JSON (see src/cli/validatorRun.ts)')
  .action((options: { config: string }) => runValidator(options))
const protection = validator
  .command('protection')
  .description("the validator's slashing protection: what it signed per epoch, to move it to another machine")
protection
  .command('export')
  .description('write the digests it signed, per epoch, as an interchange file')
  .requiredOption('--config <file>', 'validator config JSON')
  .option('--out <file>', 'the file to write (default: stdout)')
  .action(runProtectionExport)
protection
  .command('import')
  .description('take the records of an exported file (before the first start on the new machine)')
  .requiredOption('--config <file>', 'validator config JSON')
  .requiredOption('--file <file>', 'the interchange file')
  .action(runProtectionImport)

program.parseAsync().catch((error: unknown) => {
  if (error instanceof DepinError) {
    console.error(`error ${error.code}: ${error.message}`)
  } else {
    console.error(error)
  }
  process.exit(1)
})
