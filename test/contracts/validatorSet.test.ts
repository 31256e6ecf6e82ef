import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectRevert } from '../helpers/expectRevert.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
import {
  joinValidators,
  startTestNetwork,
  type TestNetwork,
  testParameters,
  WAD,
} from '../helpers/testNetwork.ts'

let net: TestNetwork
beforeAll(async () => {
  net = await startTestNetwork()
})
afterAll(async () => net?.stop())
revertAfterEachTest(() => net)

describe('ValidatorSet', () => {
  it('joins with at least the minimum bond, once', async () => {
    const v = await net.actor()
    await net.send(net.contracts.depinToken.write.transfer([v.address, 30n * WAD]))
    await net.send(
      v.contracts.depinToken.write.approve([net.deployment.contracts.validatorSet, 30n * WAD]),
      v.clients,
    )
    const args = await expectRevert(
      v.contracts.validatorSet.write.join([10n * WAD - 1n]),
      'ValidatorBondTooLow',
    )
    expect(args).toEqual([10n * WAD - 1n, 10n * WAD])
    await net.send(v.contracts.validatorSet.write.join([12n * WAD]), v.clients)
    expect(await net.contracts.validatorSet.read.isActive([v.address])).toBe(true)
    expect(await net.contracts.validatorSet.read.getValidator([v.address])).toMatchObject({
      status: 1,
      bond: 12n * WAD,
    })
    expect(await net.contracts.depinToken.read.balanceOf([net.deployment.contracts.validatorSet])).toBe(
      12n * WAD,
    )
    await expectRevert(v.contracts.validatorSet.write.join([10n * WAD]), 'ValidatorAlreadyJoined')
  })

  it('computes the quorum as ceil(2n/3) over the active set', async () => {
    const expected = [1n, 2n, 2n, 3n, 4n, 4n, 5n]
    for (const quorum of expected) {
      await joinValidators(net, 1)
      expect(await net.contracts.validatorSet.read.quorum()).toBe(quorum)
    }
  })

  it('leaves, unbonds for the delay, then withdraws the bond and may rejoin', async () => {
    const [v, w] = await joinValidators(net, 2)
    if (!v || !w) throw new Error('unreachable')
    expect(await net.contracts.validatorSet.read.activeValidators()).toEqual([v.address, w.address])
    await net.send(v.contracts.validatorSet.write.leave(), v.clients)
    expect(await net.contracts.validatorSet.read.isActive([v.address])).toBe(false)
    expect(await net.contracts.validatorSet.read.activeValidators()).toEqual([w.address])
    expect(await net.contracts.validatorSet.read.quorum()).toBe(1n)
    await expectRevert(v.contracts.validatorSet.write.leave(), 'ValidatorNotActive')
    await expectRevert(v.contracts.validatorSet.write.join([10n * WAD]), 'ValidatorAlreadyJoined')
    await expectRevert(v.contracts.validatorSet.write.withdraw(), 'ValidatorStillUnbonding')
    await expectRevert(w.contracts.validatorSet.write.withdraw(), 'ValidatorNotUnbonding')

    await net.warp(testParameters.validators.unbondingDelay)
    await net.send(v.contracts.validatorSet.write.withdraw(), v.clients)
    expect(await net.contracts.depinToken.read.balanceOf([v.address])).toBe(10n * WAD)
    expect((await net.contracts.validatorSet.read.getValidator([v.address])).status).toBe(0)
    await net.send(
      v.contracts.depinToken.write.approve([net.deployment.contracts.validatorSet, 10n * WAD]),
      v.clients,
    )
    await net.send(v.contracts.validatorSet.write.join([10n * WAD]), v.clients)
    expect(await net.contracts.validatorSet.read.activeCount()).toBe(2n)
  })

  it('lets only the EpochManager slash', async () => {
    const [v] = await joinValidators(net, 1)
    if (!v) throw new Error('unreachable')
    await expectRevert(
      net.contracts.validatorSet.write.slash([v.address, net.deployment.deployer]),
      'ValidatorUnauthorizedSlasher',
    )
    expect(await net.contracts.validatorSet.read.isActive([v.address])).toBe(true)
  })

  it('caps the active set so every on-chain loop is bounded', async () => {
    const small = await startTestNetwork({
      ...testParameters,
      validators: { ...testParameters.validators, maxValidators: 2n },
    })
    try {
      await joinValidators(small, 2)
      const third = await small.actor()
      await small.send(small.contracts.depinToken.write.transfer([third.address, 10n * WAD]))
      await small.send(
        third.contracts.depinToken.write.approve([small.deployment.contracts.validatorSet, 10n * WAD]),
        third.clients,
      )
      await expectRevert(third.contracts.validatorSet.write.join([10n * WAD]), 'ValidatorSetFull')
      expect(await small.contracts.validatorSet.read.MAX_VALIDATORS_LIMIT()).toBe(31n)
    } finally {
      await small.stop()
    }
  })

  it('lets an active validator advertise its endpoint, and nobody else', async () => {
    const [v] = await joinValidators(net, 1)
    if (!v) throw new Error('no validator')
    await net.send(v.contracts.validatorSet.write.setEndpoint(['http://10.0.0.7:9101']), v.clients)
    expect(await net.contracts.validatorSet.read.endpointOf([v.address])).toBe('http://10.0.0.7:9101')
    const [event] = await net.contracts.validatorSet.getEvents.ValidatorEndpointSet({ validator: v.address })
    expect(event?.args.url).toBe('http://10.0.0.7:9101')
    await expectRevert(
      v.contracts.validatorSet.write.setEndpoint([`http://${'x'.repeat(256)}`]),
      'ValidatorInvalidEndpoint',
    )
    const stranger = await net.actor()
    await expectRevert(
      stranger.contracts.validatorSet.write.setEndpoint(['http://evil']),
      'ValidatorNotActive',
    )
    await net.send(v.contracts.validatorSet.write.leave(), v.clients)
    await expectRevert(v.contracts.validatorSet.write.setEndpoint(['http://later']), 'ValidatorNotActive')
  })
})
