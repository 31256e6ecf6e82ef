/**
 * A real network for tests: a fresh anvil on a free loopback port, the six contracts deployed,
 * and helpers for accounts, time and snapshots. Nothing here is mocked.
 */
import {
  type Account,
  type Address,
  createTestClient,
  type Hex,
  http,
  keccak256,
  parseEther,
  toHex,
} from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { type ChainClients, createChainClients } from '../../src/chain/createChainClients.ts'
import { deployContracts } from '../../src/chain/deployContracts.ts'
import {
  type Deployment,
  defaultNetworkParameters,
  type NetworkParameters,
  NO_RULES_HASH,
} from '../../src/chain/deployment.ts'
import { type DepinContracts, getContracts } from '../../src/chain/getContracts.ts'
import { sendTransaction } from '../../src/chain/sendTransaction.ts'
import { orderSignatures, signEpochReport } from '../../src/chain/signEpochReport.ts'
import { anvilAccounts, startAnvil } from '../../src/chain/startAnvil.ts'
import { depinDomain, deviceRegistrationTypes, type EpochReport } from '../../src/chain/typedData.ts'

export const WAD = 10n ** 18n

/** Small, fast parameters: 60 s epochs, 100 tokens per epoch, halving every 5 epochs, bond 10. */
export const testParameters: NetworkParameters = {
  ...defaultNetworkParameters,
  token: { ...defaultNetworkParameters.token, initialEpochEmission: 100n * WAD, halvingInterval: 5n },
  registry: {
    relocationCooldown: 3_600n,
    deviceClasses: [
      { id: 1, requiresMaker: false },
      { id: 2, requiresMaker: true },
    ],
  },
  validators: { minBond: 10n * WAD, unbondingDelay: 86_400n, maxValidators: 31n, slashRewardBps: 1_000n },
  epochs: { epochLength: 60n },
}

export type TestNetwork = Awaited<ReturnType<typeof startTestNetwork>>

export async function startTestNetwork(parameters: NetworkParameters = testParameters) {
  const anvil = await startAnvil()
  const admin = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[0] })
  const deployment = await deployContracts({ clients: admin, parameters })
  const testClient = createTestClient({ mode: 'anvil', chain: admin.chain, transport: http(anvil.rpcUrl) })
  const contracts = getContracts(admin, deployment)

  /** Clients and contracts acting as `privateKey` (a new funded key when omitted). */
  async function actor(privateKey: Hex = generatePrivateKey()) {
    const clients = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey })
    const account = clients.account as Account
    const balance = await admin.publicClient.getBalance({ address: account.address })
    if (balance < parseEther('1'))
      await testClient.setBalance({ address: account.address, value: parseEther('100') })
    return {
      privateKey,
      account,
      address: account.address,
      clients,
      contracts: getContracts(clients, deployment),
    }
  }

  return {
    anvil,
    admin,
    deployment,
    contracts,
    testClient,
    chainId: admin.chain.id,
    actor,
    /** Sends a write and waits for it to be mined successfully. */
    send: (write: Promise<Hex>, clients: ChainClients = admin) =>
      sendTransaction(clients.publicClient, write),
    /** Moves chain time forward and mines a block. */
    async warp(seconds: bigint | number) {
      await testClient.increaseTime({ seconds: Number(seconds) })
      await testClient.mine({ blocks: 1 })
    },
    /** Moves time to just after `epoch` closed. */
    async closeEpoch(epoch: bigint) {
      const end = deployment.genesisTime + (epoch + 1n) * deployment.epochLength
      const block = await admin.publicClient.getBlock()
      if (block.timestamp < end) {
        await testClient.setNextBlockTimestamp({ timestamp: end })
        await testClient.mine({ blocks: 1 })
      }
    },
    snapshot: () => testClient.snapshot(),
    revert: (id: Hex) => testClient.revert({ id }),
    stop: () => anvil.stop(),
  }
}

/** Joins `count` new validators, each bonding `bond` tokens funded by the admin's genesis supply. */
export async function joinValidators(net: TestNetwork, count: number, bond = 10n * WAD) {
  const validators = []
  for (let i = 0; i < count; i++) {
    const v = await net.actor()
    await net.send(net.contracts.depinToken.write.transfer([v.address, bond]))
    await net.send(
      v.contracts.depinToken.write.approve([net.deployment.contracts.validatorSet, bond]),
      v.clients,
    )
    await net.send(v.contracts.validatorSet.write.join([bond]), v.clients)
    validators.push(v)
  }
  return validators
}

export function sortAddresses<T extends { address: Address }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1))
}

export type { DepinContracts, Deployment }
export { privateKeyToAccount }

type Signer = { account: import('viem').Account }

/** Signatures of `signers` over `report`, ordered as EpochManager requires. */
export async function signReport(
  net: TestNetwork,
  signers: readonly Signer[],
  report: EpochReport,
): Promise<Hex[]> {
  const signed = await Promise.all(
    signers.map((s) =>
      signEpochReport({
        account: s.account,
        chainId: net.chainId,
        epochManager: net.deployment.contracts.epochManager,
        report,
      }),
    ),
  )
  return orderSignatures(signed)
}

/** A report with non-zero roots derived from `epoch` and a label. */
export function makeReport(epoch: bigint, rewardsRoot: Hex, total: bigint, label = 'readings'): EpochReport {
  return {
    epoch,
    rulesHash: NO_RULES_HASH,
    readingsRoot: keccak256(toHex(`${label}:${epoch}`)),
    rewardsRoot,
    receiptsRoot: keccak256(toHex(`receipts:${epoch}`)),
    total,
    accepted: 100,
  }
}

/** Registers a new device key to `owner` at `cell` with its proof of possession; returns it and the receipt. */
export async function registerNewDevice(
  net: TestNetwork,
  owner: Awaited<ReturnType<TestNetwork['actor']>>,
  cell: bigint,
  deviceClass = 1,
) {
  const deviceKey = generatePrivateKey()
  const device = privateKeyToAccount(deviceKey).address
  const signature = await privateKeyToAccount(deviceKey).signTypedData({
    domain: depinDomain(net.chainId, net.deployment.contracts.deviceRegistry),
    types: deviceRegistrationTypes,
    primaryType: 'DeviceRegistration',
    message: { owner: owner.address, deviceClass },
  })
  const receipt = await net.send(
    owner.contracts.deviceRegistry.write.register([device, deviceClass, cell, signature, '0x']),
    owner.clients,
  )
  return { device, receipt }
}
