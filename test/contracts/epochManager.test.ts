import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { type Hex, hexToSignature, keccak256, signatureToHex, toHex, zeroHash } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NO_RULES_HASH } from '../../src/chain/deployment.ts'
import { orderSignatures, signEpochReport } from '../../src/chain/signEpochReport.ts'
import { expectRevert } from '../helpers/expectRevert.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
import {
  joinValidators,
  makeReport,
  signReport,
  sortAddresses,
  startTestNetwork,
  type TestNetwork,
  WAD,
} from '../helpers/testNetwork.ts'

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

let net: TestNetwork
let validators: Awaited<ReturnType<typeof joinValidators>>
const root = StandardMerkleTree.of(
  [['0x1111111111111111111111111111111111111111', 50n * WAD]],
  ['address', 'uint256'],
).root as Hex

beforeAll(async () => {
  net = await startTestNetwork()
  validators = sortAddresses(await joinValidators(net, 4))
  await net.closeEpoch(2n) // epoch 1's report is due before epoch 3 ends
})
afterAll(async () => net?.stop())
revertAfterEachTest(() => net)

/** Submits epoch `epoch`'s report signed by every validator (a write call, not yet sent). */
async function submit(epoch: bigint) {
  const report = makeReport(epoch, root, 1n)
  return net.contracts.epochManager.write.submitReport([report, await signReport(net, validators, report)])
}

describe('EpochManager.submitReport', () => {
  it('needs ceil(2n/3): 3 of 4 validators', async () => {
    expect(await net.contracts.validatorSet.read.quorum()).toBe(3n)
  })

  it('accepts a report signed by exactly the quorum, from any submitter, and funds the epoch', async () => {
    const report = makeReport(1n, root, 50n * WAD)
    const signatures = await signReport(net, validators.slice(0, 3), report)
    const anyone = await net.actor()
    await net.send(anyone.contracts.epochManager.write.submitReport([report, signatures]), anyone.clients)

    const [event] = await net.contracts.epochManager.getEvents.ReportAccepted({ epoch: 1n })
    expect(event?.args).toMatchObject({
      rewardsRoot: root,
      total: 50n * WAD,
      signers: validators.slice(0, 3).map((v) => v.address),
      submitter: anyone.address,
    })
    expect(await net.contracts.rewardDistributor.read.rewardsRoot()).toBe(root)
    expect(await net.contracts.rewardDistributor.read.totalReported()).toBe(50n * WAD)
    expect(await net.contracts.depinToken.read.balanceOf([net.deployment.contracts.rewardDistributor])).toBe(
      50n * WAD,
    )
    expect(await net.contracts.depinToken.read.mintedInEpoch([1n])).toBe(50n * WAD)
    expect(await net.contracts.epochManager.read.lastEpoch()).toEqual([true, 1n])
    expect(await net.contracts.epochManager.read.readingsRootOf([1n])).toBe(report.readingsRoot)
  })

  it('rejects one signature fewer than the quorum', async () => {
    const report = makeReport(1n, root, 1n)
    const signatures = await signReport(net, validators.slice(0, 2), report)
    const args = await expectRevert(
      net.contracts.epochManager.write.submitReport([report, signatures]),
      'EpochQuorumNotReached',
    )
    expect(args).toEqual([2n, 3n])
  })

  it('rejects a duplicated signer and unsorted signatures', async () => {
    const report = makeReport(1n, root, 1n)
    const [a, b] = await signReport(net, validators.slice(0, 2), report)
    if (!a || !b) throw new Error('unreachable')
    await expectRevert(
      net.contracts.epochManager.write.submitReport([report, [a, a, b]]),
      'EpochSignersNotSorted',
    )
    await expectRevert(
      net.contracts.epochManager.write.submitReport([report, [a, b, a]]),
      'EpochSignersNotSorted',
    )
    const [c] = await signReport(net, validators.slice(2, 3), report)
    if (!c) throw new Error('unreachable')
    await expectRevert(
      net.contracts.epochManager.write.submitReport([report, [c, b, a]]),
      'EpochSignersNotSorted',
    )
  })

  it('rejects a signer that is not an active validator', async () => {
    const report = makeReport(1n, root, 1n)
    const outsider = { account: privateKeyToAccount(generatePrivateKey()) }
    const signatures = await signReport(net, [...validators.slice(0, 2), outsider], report)
    const args = await expectRevert(
      net.contracts.epochManager.write.submitReport([report, signatures]),
      'EpochSignerNotValidator',
    )
    expect(args).toEqual([outsider.account.address])
  })

  it('rejects a malleated (high-s) signature', async () => {
    const report = makeReport(1n, root, 1n)
    const signatures = await signReport(net, validators.slice(0, 3), report)
    const original = hexToSignature(signatures[1] as Hex)
    const malleated = signatureToHex({
      r: original.r,
      s: toHex(SECP256K1_N - BigInt(original.s), { size: 32 }),
      yParity: original.yParity === 0 ? 1 : 0,
    })
    const tampered = [signatures[0], malleated, signatures[2]] as Hex[]
    const args = await expectRevert(
      net.contracts.epochManager.write.submitReport([report, tampered]),
      'EpochInvalidSignature',
    )
    expect(args).toEqual([1n])
  })

  it('rejects reports signed for another chain id or another contract', async () => {
    const report = makeReport(1n, root, 1n)
    for (const [chainId, epochManager] of [
      [net.chainId + 1, net.deployment.contracts.epochManager],
      [net.chainId, net.deployment.contracts.rewardDistributor],
    ] as const) {
      const signed = await Promise.all(
        validators.map((v) => signEpochReport({ account: v.account, chainId, epochManager, report })),
      )
      await expectRevert(
        net.contracts.epochManager.write.submitReport([report, orderSignatures(signed)]),
        'EpochSignerNotValidator',
      )
    }
  })

  it('accepts only strictly increasing epochs, and only once they closed', async () => {
    await net.send(submit(2n))
    await expectRevert(submit(2n), 'EpochNotIncreasing')
    await expectRevert(submit(1n), 'EpochNotIncreasing')
    const current = await net.contracts.epochManager.read.currentEpoch()
    await expectRevert(submit(current), 'EpochNotClosed')
    await net.closeEpoch(3n)
    await net.send(submit(3n))
    expect(await net.contracts.epochManager.read.nextEpoch()).toBe(4n)
  })

  it('refuses a report once the epoch after next has ended: the successor knows its base from the chain', async () => {
    const deadline = await net.contracts.epochManager.read.settlementDeadline([4n])
    expect(deadline).toBe(await net.contracts.epochManager.read.epochEnd([6n]))
    await net.closeEpoch(6n) // the first second of epoch 7: epoch 4's deadline
    expect(await expectRevert(submit(4n), 'EpochSettlementClosed')).toEqual([4n, deadline])
    await net.send(submit(5n)) // epoch 5's deadline is epoch 7's end
    expect(await net.contracts.epochManager.read.lastEpoch()).toEqual([true, 5n])
  })

  it('accepts only reports naming the rules pinned at deployment', async () => {
    expect(await net.contracts.epochManager.read.rulesHash()).toBe(NO_RULES_HASH)
    const other = { ...makeReport(1n, root, 1n), rulesHash: keccak256(toHex('other rules')) }
    const args = await expectRevert(
      net.contracts.epochManager.write.submitReport([other, await signReport(net, validators, other)]),
      'EpochRulesMismatch',
    )
    expect(args).toEqual([other.rulesHash, NO_RULES_HASH])
    expect(await net.contracts.epochManager.read.lastEpoch()).toEqual([false, 0n])
  })

  it('never accepts a zero root', async () => {
    const zeroRewards = makeReport(1n, zeroHash, 1n)
    await expectRevert(
      net.contracts.epochManager.write.submitReport([
        zeroRewards,
        await signReport(net, validators, zeroRewards),
      ]),
      'EpochZeroRoot',
    )
    const zeroReadings = { ...makeReport(1n, root, 1n), readingsRoot: zeroHash }
    await expectRevert(
      net.contracts.epochManager.write.submitReport([
        zeroReadings,
        await signReport(net, validators, zeroReadings),
      ]),
      'EpochZeroRoot',
    )
  })

  it('caps the total at the epoch emission plus the fee pool', async () => {
    const emission = await net.contracts.depinToken.read.emissionFor([1n])
    const tooMuch = makeReport(1n, root, emission + 1n)
    await expectRevert(
      net.contracts.epochManager.write.submitReport([tooMuch, await signReport(net, validators, tooMuch)]),
      'DistributorTotalExceedsFunds',
    )
    await net.send(net.contracts.depinToken.write.approve([net.deployment.contracts.rewardDistributor, 5n]))
    await net.send(net.contracts.rewardDistributor.write.depositFees([5n]))
    const withFees = makeReport(1n, root, emission + 5n)
    await net.send(
      net.contracts.epochManager.write.submitReport([withFees, await signReport(net, validators, withFees)]),
    )
    expect(await net.contracts.rewardDistributor.read.feePool()).toBe(0n)
    expect(await net.contracts.depinToken.read.mintedInEpoch([1n])).toBe(emission)
  })
})

describe('EpochManager.proveEquivocation', () => {
  it('slashes a validator that signed two different reports for one epoch', async () => {
    const cheat = validators[1]
    if (!cheat) throw new Error('unreachable')
    const honest = makeReport(1n, root, 1n)
    const other = makeReport(1n, keccak256(toHex('another root')), 1n)
    const [sigHonest] = await signReport(net, [cheat], honest)
    const [sigOther] = await signReport(net, [cheat], other)
    const prover = await net.actor()
    const bond = (await net.contracts.validatorSet.read.getValidator([cheat.address])).bond
    const feesBefore = await net.contracts.rewardDistributor.read.feePool()

    await net.send(
      prover.contracts.epochManager.write.proveEquivocation([
        honest,
        sigHonest as Hex,
        other,
        sigOther as Hex,
      ]),
      prover.clients,
    )
    expect(await net.contracts.validatorSet.read.isActive([cheat.address])).toBe(false)
    expect((await net.contracts.validatorSet.read.getValidator([cheat.address])).bond).toBe(0n)
    expect(await net.contracts.depinToken.read.balanceOf([prover.address])).toBe(bond / 10n)
    expect(await net.contracts.rewardDistributor.read.feePool()).toBe(feesBefore + bond - bond / 10n)
    expect(await net.contracts.validatorSet.read.activeCount()).toBe(3n)
    const [event] = await net.contracts.epochManager.getEvents.EquivocationProven()
    expect(event?.args).toMatchObject({ validator: cheat.address, epoch: 1n, slashed: bond })

    // the same offence cannot be punished twice, not even after the validator bonded again
    await net.send(net.contracts.depinToken.write.transfer([cheat.address, 10n * WAD]))
    await net.send(
      cheat.contracts.depinToken.write.approve([net.deployment.contracts.validatorSet, 10n * WAD]),
      cheat.clients,
    )
    await net.send(cheat.contracts.validatorSet.write.join([10n * WAD]), cheat.clients)
    await expectRevert(
      prover.contracts.epochManager.write.proveEquivocation([
        honest,
        sigHonest as Hex,
        other,
        sigOther as Hex,
      ]),
      'EpochAlreadyPunished',
    )
    expect((await net.contracts.validatorSet.read.getValidator([cheat.address])).bond).toBe(10n * WAD)
    await net.send(cheat.contracts.validatorSet.write.leave(), cheat.clients)

    // its signatures no longer count
    const next = makeReport(1n, root, 1n)
    await expectRevert(
      net.contracts.epochManager.write.submitReport([next, await signReport(net, validators, next)]),
      'EpochSignerNotValidator',
    )
  })

  it('slashes a validator that already left but is still unbonding', async () => {
    const cheat = validators[0]
    if (!cheat) throw new Error('unreachable')
    await net.send(cheat.contracts.validatorSet.write.leave(), cheat.clients)
    const a = makeReport(1n, root, 1n)
    const b = makeReport(1n, root, 2n)
    const [sigA] = await signReport(net, [cheat], a)
    const [sigB] = await signReport(net, [cheat], b)
    await net.send(net.contracts.epochManager.write.proveEquivocation([a, sigA as Hex, b, sigB as Hex]))
    expect((await net.contracts.validatorSet.read.getValidator([cheat.address])).bond).toBe(0n)
    await expectRevert(cheat.contracts.validatorSet.write.withdraw(), 'ValidatorNotUnbonding')
  })

  it('is not fooled by the same report twice, two epochs, or two signers', async () => {
    const [v0, v1] = validators
    if (!v0 || !v1) throw new Error('unreachable')
    const a = makeReport(1n, root, 1n)
    const [sigA] = await signReport(net, [v0], a)
    const [sigA1] = await signReport(net, [v1], a)
    const later = makeReport(2n, root, 1n)
    const [sigLater] = await signReport(net, [v0], later)
    const b = makeReport(1n, root, 2n)
    const [sigB1] = await signReport(net, [v1], b)
    const prove = (x: typeof a, sx: Hex | undefined, y: typeof a, sy: Hex | undefined) =>
      net.contracts.epochManager.write.proveEquivocation([x, sx as Hex, y, sy as Hex])
    await expectRevert(prove(a, sigA, a, sigA1), 'EpochNotEquivocation')
    await expectRevert(prove(a, sigA, later, sigLater), 'EpochNotEquivocation')
    await expectRevert(prove(a, sigA, b, sigB1), 'EpochNotEquivocation')
    expect(await net.contracts.validatorSet.read.activeCount()).toBe(4n)
  })
})
