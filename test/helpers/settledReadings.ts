/**
 * Settled epochs with accepted readings on a real test network, without running validators: devices
 * registered on-chain, readings signed by their keys, each epoch's report (its readings root the
 * tree of those readings) submitted with a quorum of test validators, the same result saved in a
 * validator store, and an indexer synced to the chain. What an API serves from, proofs included.
 */
import { join } from 'node:path'
import { latLngToCell } from 'h3-js'
import { type Address, bytesToHex, type Hex, hexToBytes, keccak256, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { NO_RULES_HASH } from '../../src/chain/deployment.ts'
import { depinDomain, deviceRegistrationTypes, type EpochReport } from '../../src/chain/typedData.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { createIndexer, type Indexer } from '../../src/indexer/createIndexer.ts'
import { createReadingHasher } from '../../src/readings/createReadingHasher.ts'
import { buildReadingsTree } from '../../src/rewards/readingsTree.ts'
import {
  type AcceptedReading,
  createValidatorStore,
  type ValidatorStore,
} from '../../src/validator/validatorStore.ts'
import { joinValidators, signReport, type TestNetwork } from './testNetwork.ts'

export type SettledReadings = {
  indexer: Indexer
  store: ValidatorStore
  /** Each device with its owner and cell. */
  devices: { address: Address; owner: Address; cell: string }[]
  /** Every accepted reading's digest, with its device and epoch. */
  accepted: { digest: Hex; device: Address; epoch: bigint; time: bigint }[]
  /** Unix time of the first reading: a window from here to `to` holds them all. */
  from: bigint
  to: bigint
  close(): Promise<void>
}

/**
 * Registers `devices` stations near (52.52, 13.405) for `owners` in turn and settles `epochs`
 * (each closed first) with `perDevice` readings of every device accepted in each.
 */
export async function settleReadings(
  net: TestNetwork,
  options: {
    dir: string
    owners: readonly Awaited<ReturnType<TestNetwork['actor']>>[]
    devices: number
    epochs: readonly bigint[]
    perDevice: number
  },
): Promise<SettledReadings> {
  const keccak = await loadKeccak256()
  const [validator] = await joinValidators(net, 1)
  const hasher = await createReadingHasher(net.chainId, net.deployment.contracts.deviceRegistry)
  const devices: (SettledReadings['devices'][number] & { key: Hex })[] = []
  for (let i = 0; i < options.devices; i++) {
    const key = generatePrivateKey()
    const device = privateKeyToAccount(key)
    const ownerActor = options.owners[i % options.owners.length] as Awaited<ReturnType<TestNetwork['actor']>>
    const owner = ownerActor.address
    const cell = latLngToCell(52.52 + i / 1000, 13.405, 8)
    const signature = await device.signTypedData({
      domain: depinDomain(net.chainId, net.deployment.contracts.deviceRegistry),
      types: deviceRegistrationTypes,
      primaryType: 'DeviceRegistration',
      message: { owner, deviceClass: 1 },
    })
    await net.send(
      ownerActor.contracts.deviceRegistry.write.register([
        device.address,
        1,
        BigInt(`0x${cell}`),
        signature,
        '0x',
      ]),
      ownerActor.clients,
    )
    devices.push({ address: device.address, owner, cell, key })
  }
  const store = createValidatorStore(join(options.dir, 'validator.db'))
  const accepted: SettledReadings['accepted'] = []
  const { genesisTime, epochLength } = net.deployment
  let seq = 0n
  for (const epoch of options.epochs) {
    const readings: AcceptedReading[] = []
    for (const d of devices) {
      for (let n = 0; n < options.perDevice; n++) {
        seq++
        const time = genesisTime + epoch * epochLength + BigInt(1 + n * 5)
        const unsigned = { device: d.address, seq, time, values: [2000n + seq, 5000n, 120n, 10_100n] }
        const digest = hasher(unsigned)
        const signature = await privateKeyToAccount(d.key).sign({ hash: bytesToHex(digest) })
        readings.push({ reading: { ...unsigned, signature }, digest: bytesToHex(digest) })
        accepted.push({ digest: bytesToHex(digest), device: d.address, epoch, time })
      }
    }
    readings.sort((a, b) => (a.reading.device.toLowerCase() < b.reading.device.toLowerCase() ? -1 : 1))
    const tree = buildReadingsTree(
      readings.map((r) => hexToBytes(r.digest)),
      keccak,
    )
    const report: EpochReport = {
      epoch,
      rulesHash: NO_RULES_HASH,
      readingsRoot: tree.root,
      rewardsRoot: keccak256(toHex(`rewards ${epoch}`)),
      receiptsRoot: keccak256(toHex(`receipts ${epoch}`)),
      total: 0n,
      accepted: readings.length,
    }
    await net.closeEpoch(epoch)
    await net.send(
      net.contracts.epochManager.write.submitReport([
        report,
        await signReport(net, [validator as never], report),
      ]),
    )
    store.saveResult(
      {
        epoch,
        report,
        digest: keccak256(toHex(`digest ${epoch}`)),
        signature: `0x${'11'.repeat(65)}`,
        cumulative: new Map(),
        rejectedByReason: {},
        batchHashes: [],
      },
      [],
      readings,
    )
  }
  const indexer = createIndexer({
    publicClient: net.admin.publicClient,
    deployment: net.deployment,
    dbPath: join(options.dir, 'indexer.db'),
  })
  await indexer.syncOnce()
  const times = accepted.map((a) => a.time).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return {
    indexer,
    store,
    devices: devices.map(({ address, owner, cell }) => ({ address, owner, cell })),
    accepted,
    from: times[0] as bigint,
    to: (times.at(-1) as bigint) + 1n,
    async close() {
      await indexer.stop()
      store.close()
    },
  }
}
