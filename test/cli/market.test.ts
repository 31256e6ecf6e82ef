/**
 * `depin market deposit|balance|withdraw` and paid `depin readings|aggregate --consumer-key-file`
 * from the command line (the real CLI, a process of its own), against a real anvil with the
 * DataMarket, and an API with the market's paywall over real SQLite stores: the consumer's key made
 * by the CLI (0600) and funded only by the test, its deposit, a withdrawal refused until due and
 * taken once due, and paid queries that advance the consumer's channel file and the provider's
 * store by exactly the price.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Address, type Hex, parseEther, parseUnits } from 'viem'
import { privateKeyToAddress } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiServer } from '../../src/api/createApiServer.ts'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import type { ProviderStore } from '../../src/market/providerStore.ts'
import { extendServed, NOTHING_SERVED, redeemArgs } from '../../src/market/voucher.ts'
import { type PaidApi, startPaidApi } from '../helpers/paidApi.ts'
import { type SettledReadings, settleReadings } from '../helpers/settledReadings.ts'
import { startTestNetwork, type TestNetwork, WAD } from '../helpers/testNetwork.ts'

const run = promisify(execFile)
const blueprint = loadBlueprint('blueprints/environment.yaml')
const PRICE = parseUnits('0.001', 18)
const AGGREGATE_PRICE = parseUnits('0.01', 18)

let dir: string
let net: TestNetwork
let settled: SettledReadings
let provider: Awaited<ReturnType<TestNetwork['actor']>>
let providerStore: ProviderStore
let paid: PaidApi
let api: ApiServer

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-market-cli-'))
  net = await startTestNetwork()
  writeDeployment(join(dir, 'deployment.json'), net.deployment)
  const owners = [await net.actor(), await net.actor()]
  provider = await net.actor()
  settled = await settleReadings(net, { dir, owners, devices: 2, epochs: [1n, 2n], perDevice: 2 })
  paid = await startPaidApi(net, settled, { dir, blueprint, provider })
  ;({ api, providerStore } = paid)
}, 120_000)

afterAll(async () => {
  await paid?.stop()
  await settled?.close()
  await net?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** Runs `depin …` against the test chain and data dir; resolves with its output and exit code. */
async function depin(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [
      '--import',
      'tsx',
      'src/cli/main.ts',
      ...args,
      '--rpc-url',
      net.anvil.rpcUrl,
      '--data-dir',
      dir,
    ])
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

/** Creates a consumer key with the CLI (as a user would, by asking its balance); returns its address. */
async function newConsumer(keyFile: string): Promise<Address> {
  const first = await depin('market', 'balance', '--consumer-key-file', keyFile)
  expect(first.code, first.stderr).toBe(0)
  expect(first.stdout).toContain(`created consumer key ${keyFile} (mode 0600)`)
  expect(statSync(keyFile).mode & 0o777).toBe(0o600)
  const address = privateKeyToAddress(readFileSync(keyFile, 'utf8').trim() as Hex)
  expect(first.stdout).not.toContain(readFileSync(keyFile, 'utf8').trim())
  return address
}

/** What the user does: sends the consumer tokens and ETH for gas. */
async function fund(consumer: Address, tokens: bigint) {
  await net.send(net.contracts.depinToken.write.transfer([consumer, tokens]))
  await net.testClient.setBalance({ address: consumer, value: parseEther('1') })
}

const accountOf = async (consumer: Address) => {
  const [balance, withdrawal, dueAt] = await net.contracts.dataMarket.read.accountOf([consumer])
  return { balance, withdrawal, dueAt }
}

describe('depin market', () => {
  it('deposits, shows the balance, refuses a withdrawal before it is due and takes it once due', async () => {
    const keyFile = join(dir, 'consumer', 'consumer.key')
    const consumer = await newConsumer(keyFile)
    const empty = await depin('market', 'balance', '--consumer-key-file', keyFile)
    expect(empty.stdout).not.toContain('created')
    expect(empty.stdout).toContain(
      `consumer ${consumer} on the DataMarket ${net.deployment.contracts.dataMarket}`,
    )
    expect(empty.stdout).toContain('\ndeposit 0 DPIN\n')
    expect(empty.stdout).toContain('\nwithdrawal none announced\n')
    expect(empty.stdout).toContain('\nwallet 0 DPIN, 0 ETH for gas\n')

    // nothing funds a consumer key but its user: refused before anything is sent
    const unfunded = await depin('market', 'deposit', '5', '--consumer-key-file', keyFile)
    expect(unfunded.code).toBe(1)
    expect(unfunded.stderr).toContain(
      `error TOKEN_BALANCE_INSUFFICIENT: ${consumer} holds 0 DPIN, less than the 5 DPIN to deposit`,
    )
    await fund(consumer, 10n * WAD)
    const tooMuch = await depin('market', 'deposit', '20', '--consumer-key-file', keyFile)
    expect(tooMuch.stderr).toContain('error TOKEN_BALANCE_INSUFFICIENT')
    expect(tooMuch.stderr).toContain('holds 10 DPIN, less than the 20 DPIN')
    const bad = ['1e3', '0', '0.0000000000000000001', '1,5']
    const refused = await Promise.all(
      bad.map((a) => depin('market', 'deposit', a, '--consumer-key-file', keyFile)),
    )
    for (const [i, r] of refused.entries()) {
      expect(r.code, bad[i]).toBe(1)
      expect(r.stderr, bad[i]).toContain('error INVALID_AMOUNT')
    }
    expect(await net.admin.publicClient.getTransactionCount({ address: consumer })).toBe(0)

    const deposited = await depin('market', 'deposit', '4.5', '--consumer-key-file', keyFile)
    expect(deposited.code, deposited.stderr).toBe(0)
    expect(deposited.stdout).toMatch(/^approved the DataMarket 0x[0-9a-fA-F]{40} to take 4.5 DPIN, tx 0x/m)
    expect(deposited.stdout).toMatch(
      new RegExp(
        `^deposited 4.5 DPIN for ${consumer}, tx 0x[0-9a-f]{64}: deposit now 4.5 DPIN, wallet 5.5 DPIN$`,
        'm',
      ),
    )
    expect(await accountOf(consumer)).toEqual({
      balance: 4_500_000_000_000_000_000n,
      withdrawal: 0n,
      dueAt: 0n,
    })

    const nothingAnnounced = await depin('market', 'withdraw', '--consumer-key-file', keyFile)
    expect(nothingAnnounced.code).toBe(1)
    expect(nothingAnnounced.stderr).toContain('error NO_WITHDRAWAL')
    const overdrawn = await depin('market', 'withdraw', '--request', '5', '--consumer-key-file', keyFile)
    expect(overdrawn.stderr).toContain('error WITHDRAWAL_EXCEEDS_DEPOSIT')

    const announced = await depin('market', 'withdraw', '--request', '1.25', '--consumer-key-file', keyFile)
    expect(announced.code, announced.stderr).toBe(0)
    const { dueAt, withdrawal } = await accountOf(consumer)
    expect(withdrawal).toBe(1_250_000_000_000_000_000n)
    const due = new RegExp(
      `announced a withdrawal of 1.25 DPIN, due in (1 hour|59 minutes( \\d+ seconds?)?), at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(unix ${dueAt}\\), tx 0x`,
    )
    expect(announced.stdout).toMatch(due)

    const pending = await depin('market', 'balance', '--consumer-key-file', keyFile)
    expect(pending.stdout).toContain('\ndeposit 4.5 DPIN\n')
    expect(pending.stdout).toMatch(
      new RegExp(`\\nwithdrawal 1.25 DPIN announced, due in .*\\(unix ${dueAt}\\)\\n`),
    )
    expect(pending.stdout).toContain('\nspendable 3.25 DPIN')
    expect(pending.stdout).toMatch(/\nwallet 5.5 DPIN, 0.99\d* ETH for gas\n/)

    const early = await depin('market', 'withdraw', '--consumer-key-file', keyFile)
    expect(early.code).toBe(1)
    expect(early.stderr).toMatch(
      new RegExp(
        `error WITHDRAWAL_NOT_DUE: the withdrawal of 1.25 DPIN is not due yet: due in .*, at .* UTC \\(unix ${dueAt}\\)`,
      ),
    )
    expect((await accountOf(consumer)).withdrawal).toBe(withdrawal)

    await net.warp(3_601)
    const ready = await depin('market', 'balance', '--consumer-key-file', keyFile)
    expect(ready.stdout).toMatch(
      new RegExp(`withdrawal 1.25 DPIN announced, due since .* \\(unix ${dueAt}\\)`),
    )
    const taken = await depin('market', 'withdraw', '--consumer-key-file', keyFile)
    expect(taken.code, taken.stderr).toBe(0)
    expect(taken.stdout).toMatch(
      new RegExp(
        `^withdrew 1.25 DPIN to ${consumer}, tx 0x[0-9a-f]{64}: deposit now 3.25 DPIN, wallet 6.75 DPIN$`,
        'm',
      ),
    )
    expect(await accountOf(consumer)).toEqual({
      balance: 3_250_000_000_000_000_000n,
      withdrawal: 0n,
      dueAt: 0n,
    })
    expect(await net.contracts.depinToken.read.balanceOf([consumer])).toBe(6_750_000_000_000_000_000n)
  })
})

describe('paid depin readings and depin aggregate', () => {
  it('pays through the market, settling so that the provider holds a voucher for exactly what was received', async () => {
    const keyFile = join(dir, 'reader.key')
    const window = ['--from', String(settled.from), '--to', String(settled.to), '--api', api.url]
    const device = (i: number) => settled.devices[i]?.address as Address
    const readings = (i: number, ...more: string[]) =>
      depin('readings', '--device', device(i), ...window, ...more)

    // an API that charges, asked without a key: told what to pass
    const free = await readings(0)
    expect(free.code).toBe(1)
    expect(free.stderr).toMatch(
      /error PAYMENT_REQUIRED: .*charges for \/v1\/readings.*--consumer-key-file FILE/,
    )
    const conflicting = await readings(0, '--accept-provider-channel')
    expect(conflicting.stderr).toContain('error INVALID_OPTIONS')

    const consumer = await newConsumer(keyFile)
    await fund(consumer, WAD)
    expect((await depin('market', 'deposit', '0.005', '--consumer-key-file', keyFile)).code).toBe(0)
    const channelFile = `${keyFile}.channel-${provider.address}.json`
    const keccak = await loadKeccak256()
    const digestsOf = (i: number) =>
      settled.accepted.filter((a) => a.device === device(i)).map((a) => a.digest)

    const paid = await readings(0, '--consumer-key-file', keyFile)
    expect(paid.code, paid.stderr).toBe(0)
    // stdout is what a free query prints: a line per reading, then the check against the chain
    const lines = paid.stdout.trim().split('\n')
    expect(lines).toHaveLength(5)
    expect(lines.slice(0, 4).every((l) => /^epoch [12] seq \d+ \S+ values /.test(l))).toBe(true)
    expect(lines[4]).toBe(
      '4 readings, every proof checked here against the readings roots on-chain (epochs 1–2)',
    )
    expect(paid.stderr.trim()).toBe(
      `paid 0.004 DPIN for 4 readings (0.001 DPIN each) to provider ${provider.address}; cumulative 0.004 DPIN for 4 readings, settled with a voucher (channel ${channelFile})`,
    )
    const served0 = extendServed(keccak, NOTHING_SERVED, digestsOf(0))
    expect(statSync(channelFile).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(channelFile, 'utf8'))).toEqual({
      provider: provider.address,
      owed: String(4n * PRICE),
      served: served0,
      servedCount: '4',
    })
    const afterFirst = providerStore.channel(consumer)
    expect(afterFirst).toMatchObject({ owed: 4n * PRICE, served: served0, servedCount: 4n })
    expect(afterFirst.voucher).toMatchObject({
      cumulativeAmount: 4n * PRICE,
      served: served0,
      servedCount: 4n,
    })

    // 4 more readings would owe 0.008, more than the 0.005 deposited: nothing served, nothing owed
    const short = await readings(1, '--consumer-key-file', keyFile)
    expect(short.code).toBe(1)
    expect(short.stderr).toContain('error DEPOSIT_INSUFFICIENT')
    expect(short.stderr).toContain(`depin market deposit AMOUNT --consumer-key-file ${keyFile}`)
    expect(short.stdout).toBe('')
    expect(JSON.parse(readFileSync(channelFile, 'utf8')).owed).toBe(String(4n * PRICE))
    expect(providerStore.channel(consumer).owed).toBe(4n * PRICE)

    expect((await depin('market', 'deposit', '0.05', '--consumer-key-file', keyFile)).code).toBe(0)
    const second = await readings(1, '--consumer-key-file', keyFile)
    expect(second.code, second.stderr).toBe(0)
    expect(second.stderr).toContain('paid 0.004 DPIN for 4 readings (0.001 DPIN each)')
    expect(second.stderr).toContain('cumulative 0.008 DPIN for 8 readings')
    const served1 = extendServed(keccak, served0, digestsOf(1))
    expect(JSON.parse(readFileSync(channelFile, 'utf8'))).toEqual({
      provider: provider.address,
      owed: String(8n * PRICE),
      served: served1,
      servedCount: '8',
    })
    expect(providerStore.channel(consumer).owed - afterFirst.owed).toBe(4n * PRICE)
    expect(providerStore.channel(consumer).voucher?.cumulativeAmount).toBe(8n * PRICE)

    // an aggregate costs its price, whatever the number of its readings
    const aggregate = await depin(
      'aggregate',
      '--field',
      'temperature',
      '--cell',
      settled.devices[0]?.cell as string,
      '--ring',
      '3',
      ...window,
      '--consumer-key-file',
      keyFile,
    )
    expect(aggregate.code, aggregate.stderr).toBe(0)
    expect(aggregate.stdout).toContain(
      'recomputed here from the readings returned: the same figures as the API',
    )
    expect(aggregate.stderr).toContain('paid 0.01 DPIN for an aggregate of 8 readings')
    expect(aggregate.stderr).toContain('cumulative 0.018 DPIN for 16 readings')
    const state = JSON.parse(readFileSync(channelFile, 'utf8'))
    expect(BigInt(state.owed) - 8n * PRICE).toBe(AGGREGATE_PRICE)
    const channel = providerStore.channel(consumer)
    expect(channel).toMatchObject({
      owed: 8n * PRICE + AGGREGATE_PRICE,
      served: state.served,
      servedCount: 16n,
    })
    expect(channel.voucher?.cumulativeAmount).toBe(8n * PRICE + AGGREGATE_PRICE)

    // the voucher the provider holds is good on-chain; the balance names what was redeemed
    const v = channel.voucher as NonNullable<typeof channel.voucher>
    await net.send(provider.contracts.dataMarket.write.redeem(redeemArgs(v)), provider.clients)
    expect((await accountOf(consumer)).balance).toBe(parseUnits('0.055', 18) - v.cumulativeAmount)
    const balance = await depin('market', 'balance', '--consumer-key-file', keyFile)
    expect(balance.stdout).toContain('\ndeposit 0.037 DPIN\n')
    expect(balance.stdout).toContain(
      `\nprovider ${provider.address}: 0.018 DPIN owed for 16 readings, 0.018 DPIN of it redeemed\n`,
    )
  })
})
