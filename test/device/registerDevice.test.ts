import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { latLngToCell } from 'h3-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { depinDomain, deviceRegistrationTypes } from '../../src/chain/typedData.ts'
import { createDeviceKey } from '../../src/device/createDeviceKey.ts'
import { loadDeviceKey } from '../../src/device/loadDeviceKey.ts'
import { registerDevice } from '../../src/device/registerDevice.ts'
import { registerDevices } from '../../src/device/registerDevices.ts'
import { createFleet } from '../../src/usecases/environment/simulator/createFleet.ts'
import { registerFleet } from '../../src/usecases/environment/simulator/registerFleet.ts'
import { startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

let net: TestNetwork
beforeAll(async () => {
  net = await startTestNetwork()
})
afterAll(async () => net?.stop())

describe('registerDevice', () => {
  it('registers a device key under its owner, with class and cell, on a real chain', async () => {
    const owner = await net.actor()
    const path = join(mkdtempSync(join(tmpdir(), 'register-')), 'device.key')
    createDeviceKey(path)
    const deviceAccount = loadDeviceKey(path)
    const cell = latLngToCell(38.7223, -9.1393, 8) // Lisbon
    const hash = await registerDevice({
      clients: owner.clients,
      deployment: net.deployment,
      deviceAccount,
      deviceClass: 1,
      h3Cell: cell,
    })
    const receipt = await net.admin.publicClient.getTransactionReceipt({ hash })
    expect(receipt.status).toBe('success')
    expect(receipt.from.toLowerCase()).toBe(owner.address.toLowerCase())

    const record = await net.contracts.deviceRegistry.read.getDevice([deviceAccount.address])
    expect(record).toMatchObject({
      owner: owner.address,
      deviceClass: 1,
      h3Cell: BigInt(`0x${cell}`),
      status: 1,
    })
    expect(await net.contracts.deviceRegistry.read.isActive([deviceAccount.address])).toBe(true)
  })

  it('refuses an invalid cell before sending anything, and reports a revert', async () => {
    const owner = await net.actor()
    const deviceAccount = createDeviceKey(join(mkdtempSync(join(tmpdir(), 'register-')), 'device.key'))
    const nonce = await net.admin.publicClient.getTransactionCount({ address: owner.address })
    await expect(
      registerDevice({
        clients: owner.clients,
        deployment: net.deployment,
        deviceAccount,
        deviceClass: 1,
        h3Cell: 12345n,
      }),
    ).rejects.toMatchObject({ code: 'H3_CELL_INVALID' })
    expect(await net.admin.publicClient.getTransactionCount({ address: owner.address })).toBe(nonce)
    // class 2 requires a maker attestation: without one the registry reverts
    await expect(
      registerDevice({
        clients: owner.clients,
        deployment: net.deployment,
        deviceAccount,
        deviceClass: 2,
        h3Cell: latLngToCell(52.52, 13.405, 8),
      }),
    ).rejects.toThrow(/RegistryInvalidMakerAttestation|reverted/)
  })
})

describe('registerFleet', () => {
  it('registers every station in its cell, owners round-robin, and skips them on a second run', async () => {
    const owners = [await net.actor(), await net.actor()]
    const fleet = createFleet({ size: 5, blueprint: loadBlueprint('blueprints/environment.yaml'), seed: 77 })
    const outcomes = await registerFleet({
      fleet,
      ownerClients: owners.map((o) => o.clients),
      deployment: net.deployment,
    })
    expect(outcomes.map((o) => o.type)).toEqual(Array(5).fill('registered'))
    for (const station of fleet.stations) {
      const record = await net.contracts.deviceRegistry.read.getDevice([station.account.address])
      expect(record).toMatchObject({
        owner: owners[station.index % 2]?.address,
        deviceClass: fleet.deviceClass.id,
        h3Cell: station.h3Cell,
        status: 1,
      })
    }
    const again = await registerFleet({
      fleet,
      ownerClients: owners.map((o) => o.clients),
      deployment: net.deployment,
    })
    expect(again.map((o) => [o.type, o.type === 'skipped' && o.status])).toEqual(
      Array(5).fill(['skipped', 'active']),
    )
  })
})

describe('registerDevices', () => {
  it('sends a transaction per batch, every one before the first is waited for; a batch that reverts is named, the others stand', async () => {
    const owner = await net.actor()
    const fleet = createFleet({ size: 7, blueprint: loadBlueprint('blueprints/environment.yaml'), seed: 78 })
    const proof = (station: (typeof fleet.stations)[number]) =>
      station.account.signTypedData({
        domain: depinDomain(net.chainId, net.deployment.contracts.deviceRegistry),
        types: deviceRegistrationTypes,
        primaryType: 'DeviceRegistration',
        message: { owner: owner.address, deviceClass: 1 },
      })
    const registrations = await Promise.all(
      fleet.stations.map(async (station) => ({
        device: station.account.address,
        deviceClass: 1,
        h3Cell: station.h3Cell,
        deviceSignature: await proof(station),
      })),
    )
    // station 4 is registered already: the batch holding it (stations 3 to 5) is refused
    await registerDevices({
      clients: owner.clients,
      deployment: net.deployment,
      registrations: [registrations[4] as (typeof registrations)[number]],
    })
    const mined: string[][] = []
    const nonce = await net.admin.publicClient.getTransactionCount({ address: owner.address })
    await expect(
      registerDevices({
        clients: owner.clients,
        deployment: net.deployment,
        registrations,
        perTransaction: 3,
        onMined: ({ devices }) => mined.push(devices),
      }),
    ).rejects.toMatchObject({
      code: 'TRANSACTION_REVERTED',
      message: expect.stringMatching(/RegistryDeviceExists/),
    })
    // the refused batch was never sent (its gas estimate named the revert): two transactions
    expect(await net.admin.publicClient.getTransactionCount({ address: owner.address })).toBe(nonce + 2)
    const address = (i: number) => fleet.stations[i]?.account.address as string
    expect(mined).toEqual([[0, 1, 2].map(address), [6].map(address)])
    const statuses = await net.contracts.deviceRegistry.read.statusesOf([
      fleet.stations.map((s) => s.account.address),
    ])
    expect(statuses).toEqual([1, 1, 1, 0, 1, 0, 1])
  })
})
