/**
 * Gas of the protocol's transactions, measured on a real anvil (`npm run bench:gas`).
 * Prints a Markdown table; with --write-readme it replaces the table between the gas markers
 * in README.md, so the README's figures are always measured, never typed in.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { buildRewardsTree } from '../src/rewards/rewardsTree.ts'
import {
  joinValidators,
  makeReport,
  registerNewDevice,
  signReport,
  startTestNetwork,
  testParameters,
} from '../test/helpers/testNetwork.ts'

const BERLIN = 0x881f1d4887fffffn
const rows: { operation: string; gas: string }[] = []
const record = (operation: string, gas: bigint | string) => {
  rows.push({ operation, gas: gas.toString() })
  console.error(`  ${operation}: ${gas}`)
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
    const epoch = 1n
    for (const n of [4, 7, 10]) {
      const snapshot = await net.snapshot()
      const validators = await joinValidators(net, n)
      const quorum = await net.contracts.validatorSet.read.quorum()
      // the first report of a network writes fresh storage slots; measure the steady state after it
      let gas = 0n
      for (const e of [epoch, epoch + 1n]) {
        await net.closeEpoch(e)
        const report = makeReport(e, keccak256(toHex(`rewards ${n} ${e}`)), 1_000n)
        const signatures = await signReport(net, validators.slice(0, Number(quorum)), report)
        gas = (await net.send(net.contracts.epochManager.write.submitReport([report, signatures]))).gasUsed
      }
      record(`submitReport, n = ${n} validators (quorum ${quorum} signatures)`, gas)
      await net.revert(snapshot)
    }

    console.error(`building a rewards tree of ${leafCount.toLocaleString('en-US')} leaves…`)
    const validators = await joinValidators(net, 4)
    const leaves = Array.from({ length: leafCount }, (_, i) => ({
      account:
        `0x${(BigInt(i + 1) * 0x9e3779b97f4a7c15n).toString(16).padStart(40, '0').slice(-40)}` as Address,
      cumulativeAmount: BigInt(1 + (i % 1000)),
    }))
    const tree = await buildRewardsTree(leaves)
    const total = leaves.reduce((sum, leaf) => sum + leaf.cumulativeAmount, 0n)
    await net.closeEpoch(epoch)
    const report = makeReport(epoch, tree.root, total)
    await net.send(
      net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)]),
    )
    const claimGas: number[] = []
    for (const position of [0, Math.floor(leafCount / 2), leafCount - 1]) {
      const leaf = tree.leafAt(position)
      const receipt = await net.send(
        net.contracts.rewardDistributor.write.claim([
          leaf.account,
          leaf.cumulativeAmount,
          tree.getProofAt(position),
        ]),
      )
      claimGas.push(Number(receipt.gasUsed))
    }
    const min = Math.min(...claimGas)
    const max = Math.max(...claimGas)
    record(
      `claim, tree of ${leafCount.toLocaleString('en-US')} leaves (first claim of an account)`,
      min === max ? String(min) : `${min}–${max}`,
    )
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
