import { type Hex, parseSignature } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectRevert } from '../helpers/expectRevert.ts'
import { startTestNetwork, type TestNetwork, testParameters, WAD } from '../helpers/testNetwork.ts'

let net: TestNetwork
beforeAll(async () => {
  net = await startTestNetwork()
})
afterAll(async () => net?.stop())

describe('DepinToken', () => {
  it('mints the genesis supply to the deployer and names the distributor as its only minter', async () => {
    expect(await net.contracts.depinToken.read.totalSupply()).toBe(testParameters.token.genesisSupply)
    expect(await net.contracts.depinToken.read.balanceOf([net.deployment.deployer])).toBe(
      testParameters.token.genesisSupply,
    )
    expect(await net.contracts.depinToken.read.minter()).toBe(net.deployment.contracts.rewardDistributor)
  })

  it('rejects minting by anyone but the reward distributor', async () => {
    const outsider = await net.actor()
    for (const caller of [net.contracts, outsider.contracts]) {
      await expectRevert(
        caller.depinToken.write.mintEpochEmission([1n, outsider.address, 1n]),
        'TokenUnauthorizedMinter',
      )
    }
    expect(await net.contracts.depinToken.read.totalSupply()).toBe(testParameters.token.genesisSupply)
  })

  it('halves the per-epoch emission every halvingInterval epochs', async () => {
    const schedule = await Promise.all(
      [0n, 4n, 5n, 9n, 10n, 5n * 300n].map((e) => net.contracts.depinToken.read.emissionFor([e])),
    )
    expect(schedule).toEqual([100n * WAD, 100n * WAD, 50n * WAD, 50n * WAD, 25n * WAD, 0n])
  })

  it('supports EIP-2612 permit', async () => {
    const holder = await net.actor()
    const spender = await net.actor()
    const deadline = (await net.admin.publicClient.getBlock()).timestamp + 3600n
    const signature = await holder.account.signTypedData?.({
      domain: {
        name: testParameters.token.name,
        version: '1',
        chainId: net.chainId,
        verifyingContract: net.deployment.contracts.depinToken,
      },
      types: {
        Permit: [
          { name: 'owner', type: 'address' },
          { name: 'spender', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' },
        ],
      },
      primaryType: 'Permit',
      message: { owner: holder.address, spender: spender.address, value: 7n, nonce: 0n, deadline },
    })
    const { r, s, v } = parseSignature(signature as Hex)
    await net.send(
      spender.contracts.depinToken.write.permit([
        holder.address,
        spender.address,
        7n,
        deadline,
        Number(v),
        r,
        s,
      ]),
      spender.clients,
    )
    expect(await net.contracts.depinToken.read.allowance([holder.address, spender.address])).toBe(7n)
  })
})
