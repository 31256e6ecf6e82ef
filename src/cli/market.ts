/**
 * `depin market deposit|balance|withdraw`: the consumer's funds on the DataMarket, under its own
 * key (`--consumer-key-file`). A deposit pays providers for proven readings (`depin readings
 * --consumer-key-file`); a withdrawal is announced first and taken once due, providers redeeming
 * the vouchers they hold from the deposit meanwhile.
 */
import { BaseError, ContractFunctionRevertedError, type Hex, parseEventLogs } from 'viem'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { dataMarketAbi } from '../chain/generated/contracts.ts'
import { getContracts } from '../chain/getContracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import { ChainError, ConfigError, DepinError } from '../errors.ts'
import {
  createdKeyLine,
  formatTokens,
  listChannelFiles,
  loadConsumerKey,
  parseTokenAmount,
} from './consumerKey.ts'

export type MarketOptions = {
  consumerKeyFile: string
  rpcUrl: string
  dataDir: string
  /** Where the command's lines go (default: stdout). */
  print?: (line: string) => void
}

/** The consumer's key, clients and contracts, and the token's symbol. */
async function openConsumer(options: MarketOptions) {
  const print = options.print ?? console.log
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const { privateKey, account, created } = loadConsumerKey(options.consumerKeyFile)
  if (created) print(createdKeyLine(options.consumerKeyFile, account.address))
  const clients = await createChainClients({ rpcUrl: options.rpcUrl, privateKey })
  const contracts = getContracts(clients, deployment)
  const symbol = await contracts.depinToken.read.symbol()
  const tokens = (amount: bigint) => formatTokens(amount, symbol)
  const accountOf = async () => {
    const [balance, withdrawal, dueAt] = await contracts.dataMarket.read.accountOf([account.address])
    return { balance, withdrawal, dueAt: BigInt(dueAt) }
  }
  return { print, deployment, account, consumer: account.address, clients, contracts, tokens, accountOf }
}
type Consumer = Awaited<ReturnType<typeof openConsumer>>

/** The chain's time: its latest block's, or the clock's when that block is older (no block since). */
async function chainNow(consumer: Consumer): Promise<bigint> {
  const block = await consumer.clients.publicClient.getBlock()
  const clock = BigInt(Math.floor(Date.now() / 1000))
  return block.timestamp > clock ? block.timestamp : clock
}

const UNITS: [string, bigint][] = [
  ['day', 86_400n],
  ['hour', 3_600n],
  ['minute', 60n],
  ['second', 1n],
]

/** A duration in words, to its two largest units (`1 hour 5 minutes`, `59 seconds`). */
export function durationInWords(seconds: bigint): string {
  const index = UNITS.findIndex(([, size]) => seconds >= size)
  if (index < 0) return '0 seconds'
  const words = (name: string, n: bigint) => `${n} ${name}${n === 1n ? '' : 's'}`
  const [name, size] = UNITS[index] as [string, bigint]
  const first = words(name, seconds / size)
  const next = UNITS[index + 1]
  if (!next) return first
  const rest = (seconds % size) / next[1]
  return rest > 0n ? `${first} ${words(next[0], rest)}` : first
}

const utc = (unix: bigint) =>
  new Date(Number(unix) * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')

/** When a withdrawal is due, in words and unix time, as seen at `now`. */
export function describeDue(dueAt: bigint, now: bigint): string {
  return dueAt > now
    ? `due in ${durationInWords(dueAt - now)}, at ${utc(dueAt)} (unix ${dueAt})`
    : `due since ${utc(dueAt)} (unix ${dueAt})`
}

/** The name and arguments of the protocol's custom error a call reverted with, if it did. */
function contractRefusal(error: unknown): { name: string; args: readonly unknown[] } | undefined {
  if (!(error instanceof BaseError)) return undefined
  const revert = error.walk((e) => e instanceof ContractFunctionRevertedError)
  if (!(revert instanceof ContractFunctionRevertedError)) return undefined
  const name = revert.data?.errorName ?? revert.signature ?? revert.reason
  return name ? { name, args: revert.data?.args ?? [] } : undefined
}

/**
 * Sends a DataMarket or token write; a revert the node names (custom errors decoded with the
 * protocol's ABI) becomes CONTRACT_REFUSED naming the error, unless `refused` maps it first.
 */
async function send(
  consumer: Consumer,
  what: string,
  write: () => Promise<Hex>,
  refused: (name: string, args: readonly unknown[]) => DepinError | undefined = () => undefined,
) {
  try {
    return await sendTransaction(consumer.clients.publicClient, write(), what)
  } catch (error) {
    const refusal = contractRefusal(error)
    if (!refusal) throw error
    throw (
      refused(refusal.name, refusal.args) ??
      new ChainError(
        'CONTRACT_REFUSED',
        `${what} was refused by the contract: ${refusal.name}(${refusal.args.map(String).join(', ')})`,
        { details: { error: refusal.name, args: refusal.args.map(String) }, cause: error },
      )
    )
  }
}

/** Refuses before sending anything when the consumer has no ETH to pay the gas. */
async function requireGas(consumer: Consumer) {
  const eth = await consumer.clients.publicClient.getBalance({ address: consumer.consumer })
  if (eth === 0n) {
    throw new ConfigError(
      'GAS_FUNDS_MISSING',
      `${consumer.consumer} has no ETH to pay the gas: send it some (nothing funds a consumer key but you)`,
      { details: { consumer: consumer.consumer } },
    )
  }
}

/**
 * `depin market deposit <amount>`: adds `amount` tokens of the consumer's wallet to its deposit
 * on the DataMarket, approving the market for exactly what it lacks first. Refuses before sending
 * anything when the wallet holds fewer tokens, or no ETH for gas.
 */
export async function runMarketDeposit(amountText: string, options: MarketOptions): Promise<void> {
  const amount = parseTokenAmount(amountText, 'the amount')
  const consumer = await openConsumer(options)
  const { print, contracts, tokens, deployment } = consumer
  const wallet = await contracts.depinToken.read.balanceOf([consumer.consumer])
  if (wallet < amount) {
    throw new ConfigError(
      'TOKEN_BALANCE_INSUFFICIENT',
      `${consumer.consumer} holds ${tokens(wallet)}, less than the ${tokens(amount)} to deposit: send it tokens first`,
      { details: { consumer: consumer.consumer, balance: String(wallet), amount: String(amount) } },
    )
  }
  await requireGas(consumer)
  const market = deployment.contracts.dataMarket
  const allowance = await contracts.depinToken.read.allowance([consumer.consumer, market])
  if (allowance < amount) {
    const approved = await send(consumer, 'approving the DataMarket', () =>
      contracts.depinToken.write.approve([market, amount]),
    )
    print(`approved the DataMarket ${market} to take ${tokens(amount)}, tx ${approved.transactionHash}`)
  }
  const receipt = await send(consumer, 'the deposit', () => contracts.dataMarket.write.deposit([amount]))
  const after = await consumer.accountOf()
  print(
    `deposited ${tokens(amount)} for ${consumer.consumer}, tx ${receipt.transactionHash}: deposit now ${tokens(after.balance)}, wallet ${tokens(wallet - amount)}`,
  )
}

/**
 * `depin market balance`: the consumer's deposit, its announced withdrawal and when it is due,
 * what is left to pay providers with, its wallet, and each channel it keeps next to its key.
 */
export async function runMarketBalance(options: MarketOptions): Promise<void> {
  const consumer = await openConsumer(options)
  const { print, contracts, tokens, deployment } = consumer
  const [account, wallet, eth, now] = await Promise.all([
    consumer.accountOf(),
    contracts.depinToken.read.balanceOf([consumer.consumer]),
    consumer.clients.publicClient.getBalance({ address: consumer.consumer }),
    chainNow(consumer),
  ])
  print(`consumer ${consumer.consumer} on the DataMarket ${deployment.contracts.dataMarket}`)
  print(`deposit ${tokens(account.balance)}`)
  if (account.withdrawal > 0n) {
    print(`withdrawal ${tokens(account.withdrawal)} announced, ${describeDue(account.dueAt, now)}`)
    const spendable = account.balance > account.withdrawal ? account.balance - account.withdrawal : 0n
    print(`spendable ${tokens(spendable)} (providers serve against the deposit less the withdrawal)`)
  } else print('withdrawal none announced')
  print(`wallet ${tokens(wallet)}, ${formatEth(eth)} ETH for gas`)
  for (const { channel } of listChannelFiles(options.consumerKeyFile)) {
    const [redeemed] = await contracts.dataMarket.read.redeemedOf([consumer.consumer, channel.provider])
    print(
      `provider ${channel.provider}: ${tokens(channel.owed)} owed for ${channel.servedCount} readings, ${tokens(redeemed)} of it redeemed`,
    )
  }
}

const formatEth = (wei: bigint) => {
  const whole = wei / 10n ** 18n
  const fraction = (wei % 10n ** 18n).toString().padStart(18, '0').slice(0, 4).replace(/0+$/, '')
  return fraction ? `${whole}.${fraction}` : `${whole}`
}

/**
 * `depin market withdraw --request <amount>` announces a withdrawal (due after the market's
 * delay; it replaces an earlier one and restarts the delay); `depin market withdraw` takes the
 * announced one once due, or says when it will be.
 */
export async function runMarketWithdraw(options: MarketOptions & { request?: string }): Promise<void> {
  const requested = options.request === undefined ? undefined : parseTokenAmount(options.request, '--request')
  const consumer = await openConsumer(options)
  const { print, contracts, tokens } = consumer
  const before = await consumer.accountOf()
  if (requested !== undefined) {
    if (requested > before.balance) {
      throw new ConfigError(
        'WITHDRAWAL_EXCEEDS_DEPOSIT',
        `the deposit of ${consumer.consumer} holds ${tokens(before.balance)}, less than the ${tokens(requested)} asked for`,
        { details: { balance: String(before.balance), requested: String(requested) } },
      )
    }
    await requireGas(consumer)
    if (before.withdrawal > 0n)
      print(
        `replacing the announced withdrawal of ${tokens(before.withdrawal)} (due at unix ${before.dueAt}): the delay starts again`,
      )
    const receipt = await send(consumer, 'announcing the withdrawal', () =>
      contracts.dataMarket.write.requestWithdrawal([requested]),
    )
    const after = await consumer.accountOf()
    print(
      `announced a withdrawal of ${tokens(requested)}, ${describeDue(after.dueAt, await chainNow(consumer))}, tx ${receipt.transactionHash}`,
    )
    print(
      'until then providers can still redeem the vouchers they hold from the deposit; take it with `depin market withdraw`',
    )
    return
  }
  const notDue = (dueAt: bigint, now: bigint) =>
    new DepinError(
      'WITHDRAWAL_NOT_DUE',
      `the withdrawal of ${tokens(before.withdrawal)} is not due yet: ${describeDue(dueAt, now)}`,
      { details: { dueAt: String(dueAt) }, retryable: true },
    )
  if (before.withdrawal === 0n) {
    throw new ConfigError(
      'NO_WITHDRAWAL',
      `${consumer.consumer} announced no withdrawal: \`depin market withdraw --request AMOUNT\` first`,
    )
  }
  await requireGas(consumer)
  // the contract decides whether it is due (by the time of the block it runs in): a refusal comes
  // back from the gas estimate, before anything is sent
  const now = await chainNow(consumer)
  const receipt = await send(
    consumer,
    'the withdrawal',
    () => contracts.dataMarket.write.withdraw(),
    (name, args) => {
      if (name === 'MarketWithdrawalNotDue') return notDue(BigInt(args[1] as bigint), now)
      if (name === 'MarketNoWithdrawal')
        return new ConfigError('NO_WITHDRAWAL', `${consumer.consumer} announced no withdrawal`)
      return undefined
    },
  )
  const [withdrawn] = parseEventLogs({ abi: dataMarketAbi, logs: receipt.logs, eventName: 'Withdrawn' })
  const amount = withdrawn?.args.amount ?? 0n
  const left = withdrawn?.args.balance ?? (await consumer.accountOf()).balance
  const wallet = await contracts.depinToken.read.balanceOf([consumer.consumer])
  print(
    `withdrew ${tokens(amount)} to ${consumer.consumer}, tx ${receipt.transactionHash}: deposit now ${tokens(left)}, wallet ${tokens(wallet)}`,
  )
  if (amount < before.withdrawal)
    print(
      `${tokens(before.withdrawal - amount)} less than announced: providers redeemed vouchers from the deposit meanwhile`,
    )
}
