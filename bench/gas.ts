/**
 * Gas of the protocol's transactions, measured on a real anvil (`npm run bench:gas`).
 * Prints a Markdown table; with --write-readme it replaces the table between the gas markers
 * in README.md, so the README's figures are always measured, never typed in.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { type Address, createWalletClient, type Hex, http, keccak256, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { depinTokenAbi } from '../src/chain/generated/contracts.ts'
import { depinDomain, deviceRegistrationTypes } from '../src/chain/typedData.ts'
import { loadKeccak256 } from '../src/crypto/keccak.ts'
import { extendServed, NOTHING_SERVED, redeemArgs, signVoucher } from '../src/market/voucher.ts'
import { buildRewardsTree } from '../src/rewards/rewardsTree.ts'
import {
  joinValidators,
  makeReport,
  registerNewDevice,
  signReport,
  startTestNetwork,
  type TestNetwork,
  testParameters,
  WAD,
} from '../test/helpers/testNetwork.ts'

const BERLIN = 0x881f1d4887fffffn
const rows: { operation: string; gas: string }[] = []
const record = (operation: string, gas: bigint | string) => {
  rows.push({ operation, gas: gas.toString() })
  console.error(`  ${operation}: ${gas}`)
}

type Actor = Awaited<ReturnType<TestNetwork['actor']>>

/**
 * The DataMarket's transactions, as a consumer and a provider send them: deposits approved exactly
 * beforehand (as `depin market deposit` does), vouchers for answers of 100 readings each.
 */
async function measureDataMarket(net: TestNetwork) {
  console.error('measuring the data market…')
  const keccak = await loadKeccak256()
  const market = net.deployment.contracts.dataMarket
  const domain = { chainId: net.chainId, market }
  const provider = await net.actor()
  await net.send(net.contracts.dataMarket.write.addProvider([provider.address, 'http://10.0.0.9:8547']))
  const PRICE = WAD / 1000n // the environment blueprint's price of a reading
  const digests = (label: string) =>
    Array.from({ length: 100 }, (_, i) => keccak256(toHex(`served ${label} ${i}`)))
  const fund = async (who: Actor, amount: bigint) =>
    net.send(net.contracts.depinToken.write.transfer([who.address, amount]))
  const deposit = async (who: Actor, amount: bigint) => {
    await net.send(who.contracts.depinToken.write.approve([market, amount]), who.clients)
    return net.send(who.contracts.dataMarket.write.deposit([amount]), who.clients)
  }
  /** The provider redeems `who`'s voucher for `answers` answers of 100 readings served so far. */
  const redeem = async (who: Actor, answers: number) => {
    let served = NOTHING_SERVED
    for (let a = 0; a < answers; a++) served = extendServed(keccak, served, digests(`${who.address} ${a}`))
    const v = await signVoucher(who.account, domain, {
      consumer: who.address,
      provider: provider.address,
      cumulativeAmount: PRICE * 100n * BigInt(answers),
      served,
      servedCount: 100n * BigInt(answers),
    })
    return net.send(provider.contracts.dataMarket.write.redeem(redeemArgs(v)), provider.clients)
  }
  // another consumer first, so that neither the market's token balance nor the fee pool is
  // written from zero by the transactions measured
  const earlier = await net.actor()
  await fund(earlier, 100n * WAD)
  await deposit(earlier, 10n * WAD)
  await redeem(earlier, 1)

  const consumer = await net.actor()
  await fund(consumer, 1_000n * WAD)
  record(
    "market deposit (a consumer's first; approved exactly beforehand, as `depin market deposit` does)",
    (await deposit(consumer, 100n * WAD)).gasUsed,
  )
  record(
    'market deposit, repeat (a consumer that holds a deposit)',
    (await deposit(consumer, 100n * WAD)).gasUsed,
  )
  record(
    'market redeem, first of a consumer–provider pair (a voucher for 100 readings served)',
    (await redeem(consumer, 1)).gasUsed,
  )
  record(
    'market redeem, repeat (the same pair, a later voucher: higher cumulative amount, 200 readings served)',
    (await redeem(consumer, 2)).gasUsed,
  )
  record(
    'market requestWithdrawal (announce)',
    (await net.send(consumer.contracts.dataMarket.write.requestWithdrawal([50n * WAD]), consumer.clients))
      .gasUsed,
  )
  await net.warp(await net.contracts.dataMarket.read.withdrawalDelay())
  record(
    'market withdraw (once due; part of the deposit, to a wallet that still holds tokens)',
    (await net.send(consumer.contracts.dataMarket.write.withdraw(), consumer.clients)).gasUsed,
  )
}

async function main() {
  const leafCount = Number(process.env.GAS_CLAIM_LEAVES ?? 1_000_000)
  const net = await startTestNetwork({
    ...testParameters,
    token: { ...testParameters.token, initialEpochEmission: 10n ** 30n },
  })
  try {
    console.error('measuring device registry…')
    const owner = await net.actor()
    const buyer = await net.actor()
    const first = await registerNewDevice(net, owner, BERLIN)
    record('register (device, proof of possession)', first.receipt.gasUsed)
    // a fleet's onboarding: 100 devices, each with its own proof of possession, in one transaction
    const batch = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const key = generatePrivateKey()
        return {
          device: privateKeyToAccount(key).address,
          deviceClass: 1,
          h3Cell: BERLIN,
          deviceSignature: await privateKeyToAccount(key).signTypedData({
            domain: depinDomain(net.chainId, net.deployment.contracts.deviceRegistry),
            types: deviceRegistrationTypes,
            primaryType: 'DeviceRegistration',
            message: { owner: owner.address, deviceClass: 1 },
          }),
          makerSignature: '0x' as Hex,
        }
      }),
    )
    const many = await net.send(owner.contracts.deviceRegistry.write.registerMany([batch]), owner.clients)
    record('registerMany, 100 devices (each its own proof of possession), per device', many.gasUsed / 100n)
    const { device } = await registerNewDevice(net, owner, BERLIN)
    record(
      'transfer device',
      (await net.send(owner.contracts.deviceRegistry.write.transfer([device, buyer.address]), owner.clients))
        .gasUsed,
    )
    record(
      'retire device',
      (await net.send(buyer.contracts.deviceRegistry.write.retire([device]), buyer.clients)).gasUsed,
    )

    record(
      'add a gateway to the list (governance)',
      (await net.send(net.contracts.deviceRegistry.write.addGateway([buyer.address, 'http://10.0.0.5:8546'])))
        .gasUsed,
    )

    console.error('measuring validator set…')
    const [joined] = await joinValidators(net, 1)
    if (!joined) throw new Error('no validator joined')
    const joinLog = await net.contracts.validatorSet.getEvents.ValidatorJoined({ validator: joined.address })
    const joinReceipt = await net.admin.publicClient.getTransactionReceipt({
      hash: joinLog[0]?.transactionHash as Hex,
    })
    record('validator join', joinReceipt.gasUsed)
    record(
      'validator setEndpoint (advertise its URL)',
      (
        await net.send(
          joined.contracts.validatorSet.write.setEndpoint(['http://10.0.0.7:9101']),
          joined.clients,
        )
      ).gasUsed,
    )
    record(
      'validator leave',
      (await net.send(joined.contracts.validatorSet.write.leave(), joined.clients)).gasUsed,
    )

    console.error('measuring epoch reports…')
    const ringSize = await net.contracts.rewardDistributor.read.ROOT_RING_SIZE()
    for (const n of [4, 7, 10]) {
      const snapshot = await net.snapshot()
      const validators = await joinValidators(net, n)
      const quorum = await net.contracts.validatorSet.read.quorum()
      // The first report of a network writes fresh storage slots, and so does each of the first
      // ROOT_RING_SIZE reports in the distributor's ring of roots; the steady state is a report
      // once the ring has gone round (its slot then holds the root of the epoch ROOT_RING_SIZE before).
      const gasOf = new Map<bigint, bigint>()
      for (let e = 1n; e <= ringSize + 1n; e++) {
        await net.closeEpoch(e)
        const report = makeReport(e, keccak256(toHex(`rewards ${n} ${e}`)), 1_000n)
        const signatures = await signReport(net, validators.slice(0, Number(quorum)), report)
        gasOf.set(
          e,
          (await net.send(net.contracts.epochManager.write.submitReport([report, signatures]))).gasUsed,
        )
      }
      record(
        `submitReport, n = ${n} validators (quorum ${quorum} signatures)`,
        gasOf.get(ringSize + 1n) ?? 0n,
      )
      if (n === 4)
        record(
          `submitReport, n = 4, one of the first ${ringSize} epochs (its ring slot written for the first time)`,
          gasOf.get(2n) ?? 0n,
        )
      await net.revert(snapshot)
    }

    console.error(`building two rewards trees of ${leafCount.toLocaleString('en-US')} leaves…`)
    const validators = await joinValidators(net, 4)
    const accounts = Array.from(
      { length: leafCount },
      (_, i) =>
        `0x${(BigInt(i + 1) * 0x9e3779b97f4a7c15n).toString(16).padStart(40, '0').slice(-40)}` as Address,
    )
    // epoch 1's tree, and epoch 4's: every account earned 1,000 more in epochs 2–4
    const older = await buildRewardsTree(
      accounts.map((account, i) => ({ account, cumulativeAmount: BigInt(1 + (i % 1000)) })),
    )
    const latest = await buildRewardsTree(
      accounts.map((account, i) => ({ account, cumulativeAmount: BigInt(1001 + (i % 1000)) })),
    )
    const settle = async (epoch: bigint, root: Hex, total: bigint) => {
      await net.closeEpoch(epoch)
      const report = makeReport(epoch, root, total)
      await net.send(
        net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
      )
    }
    await settle(1n, older.root, BigInt(leafCount) * 1000n)
    await settle(2n, keccak256(toHex('epoch 2')), BigInt(leafCount) * 500n)
    await settle(3n, keccak256(toHex('epoch 3')), BigInt(leafCount) * 500n)
    await settle(4n, latest.root, 0n)

    const claimGas = async (tree: typeof latest, epoch: bigint, account: Address) => {
      const position = tree.indexOf(account)
      if (position === undefined) throw new Error(`no leaf for ${account}`)
      const leaf = tree.leafAt(position)
      const proof = tree.getProofAt(position)
      const receipt = await net.send(
        net.contracts.rewardDistributor.write.claim([leaf.account, leaf.cumulativeAmount, epoch, proof]),
      )
      return { gas: receipt.gasUsed, proofLength: proof.length }
    }
    /** min–max over the claims, with the proof lengths they had. */
    const range = (claims: { gas: bigint; proofLength: number }[]) => {
      const gas = claims.map((c) => Number(c.gas))
      const lengths = [...new Set(claims.map((c) => c.proofLength))].sort((a, b) => a - b)
      const [min, max] = [Math.min(...gas), Math.max(...gas)]
      console.error(`    proofs of ${lengths.join(' and ')} hashes`)
      return min === max ? String(min) : `${min}–${max}`
    }
    // three accounts per measurement, at the start, middle and end of epoch 1's leaf order; each
    // measurement its own offset, so that no account is measured twice
    const picked = (offset: number) =>
      [offset, Math.floor(leafCount / 2) + offset, leafCount - 1 - offset].map((p) => older.leafAt(p).account)
    const fresh = picked(0)
    const firstClaims = []
    for (const account of fresh) firstClaims.push(await claimGas(latest, 4n, account))
    const label = `tree of ${leafCount.toLocaleString('en-US')} leaves`
    record(`claim, ${label} (first claim of an account, latest root)`, range(firstClaims))
    const early = picked(1)
    const oldClaims = []
    for (const account of early) oldClaims.push(await claimGas(older, 1n, account))
    record(`claim, ${label}, against a root 3 epochs old (first claim of an account)`, range(oldClaims))
    const repeatClaims = []
    for (const account of early) repeatClaims.push(await claimGas(latest, 4n, account))
    record(
      `claim, ${label}, repeat (an account that claimed before, now owed more; it still holds what it was paid)`,
      range(repeatClaims),
    )
    // the worst repeat: the account's token balance is back to zero, so the transfer writes it afresh
    const spent = picked(2)
    for (const account of spent) {
      await claimGas(older, 1n, account)
      await net.testClient.impersonateAccount({ address: account })
      await net.testClient.setBalance({ address: account, value: 10n ** 18n })
      const wallet = createWalletClient({
        account,
        chain: net.admin.chain,
        transport: http(net.anvil.rpcUrl),
      })
      const held = await net.contracts.depinToken.read.balanceOf([account])
      await net.send(
        wallet.writeContract({
          address: net.deployment.contracts.depinToken,
          abi: depinTokenAbi,
          functionName: 'transfer',
          args: [net.deployment.deployer, held],
        }),
      )
      await net.testClient.stopImpersonatingAccount({ address: account })
    }
    const spentClaims = []
    for (const account of spent) spentClaims.push(await claimGas(latest, 4n, account))
    record(`claim, ${label}, repeat by an account that has since spent all it was paid`, range(spentClaims))

    await measureDataMarket(net)
  } finally {
    await net.stop()
  }

  const table = [
    '| operation | gas |',
    '| --- | ---: |',
    ...rows.map((r) => `| ${r.operation} | ${r.gas} |`),
  ].join('\n')
  console.log(table)
  if (process.argv.includes('--write-readme')) {
    const readme = readFileSync('README.md', 'utf8')
    const marked = /<!-- gas:start -->[\s\S]*<!-- gas:end -->/
    if (!marked.test(readme))
      throw new Error('README.md has no <!-- gas:start --> … <!-- gas:end --> markers')
    const stamp = `Measured by \`npm run bench:gas -- --write-readme\` on ${new Date().toISOString().slice(0, 10)} (anvil, solc 0.8.28, optimizer 200 runs).`
    writeFileSync(
      'README.md',
      readme.replace(marked, `<!-- gas:start -->\n${stamp}\n\n${table}\n<!-- gas:end -->`),
    )
    console.error('updated README.md')
  }
}

await main()
