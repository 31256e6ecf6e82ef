import { type Address, type Hex, zeroAddress } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { depinDomain, deviceRegistrationTypes, makerAttestationTypes } from '../../src/chain/typedData.ts'
import { expectRevert } from '../helpers/expectRevert.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
import { startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

// Resolution-8 H3 cells (valid mode-1 indexes): Berlin and Lisbon.
const BERLIN = 0x881f1d4887fffffn
const LISBON = 0x88393362a1fffffn

let net: TestNetwork
beforeAll(async () => {
  net = await startTestNetwork()
})
afterAll(async () => net?.stop())
revertAfterEachTest(() => net)

async function possession(
  deviceKey: Hex,
  owner: Address,
  deviceClass: number,
  chainId = net.chainId,
  registry = net.deployment.contracts.deviceRegistry,
) {
  return privateKeyToAccount(deviceKey).signTypedData({
    domain: depinDomain(chainId, registry),
    types: deviceRegistrationTypes,
    primaryType: 'DeviceRegistration',
    message: { owner, deviceClass },
  })
}

describe('DeviceRegistry', () => {
  it('registers a device with a valid proof of possession and records it', async () => {
    const owner = await net.actor()
    const deviceKey = generatePrivateKey()
    const device = privateKeyToAccount(deviceKey).address
    const signature = await possession(deviceKey, owner.address, 1)
    await net.send(
      owner.contracts.deviceRegistry.write.register([device, 1, BERLIN, signature, '0x']),
      owner.clients,
    )

    const record = await net.contracts.deviceRegistry.read.getDevice([device])
    expect(record.owner).toBe(owner.address)
    expect(record.deviceClass).toBe(1)
    expect(record.h3Cell).toBe(BERLIN)
    expect(record.status).toBe(1)
    expect(await net.contracts.deviceRegistry.read.isActive([device])).toBe(true)
    expect(await net.contracts.deviceRegistry.read.activeDevices()).toBe(1n)
    const events = await net.contracts.deviceRegistry.getEvents.DeviceRegistered({ device })
    expect(events).toHaveLength(1)
    expect(events[0]?.args.owner).toBe(owner.address)
  })

  it('rejects a forged proof: signed by another key, or for another owner', async () => {
    const owner = await net.actor()
    const thief = await net.actor()
    const deviceKey = generatePrivateKey()
    const device = privateKeyToAccount(deviceKey).address
    const byOtherKey = await possession(generatePrivateKey(), owner.address, 1)
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([device, 1, BERLIN, byOtherKey, '0x']),
      'RegistryInvalidDeviceSignature',
    )
    // the device agreed to `owner`, so `thief` cannot use the signature
    const forOwner = await possession(deviceKey, owner.address, 1)
    await expectRevert(
      thief.contracts.deviceRegistry.write.register([device, 1, BERLIN, forOwner, '0x']),
      'RegistryInvalidDeviceSignature',
    )
    // a signature for another class does not register it in this one
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([device, 2, BERLIN, forOwner, '0x']),
      'RegistryInvalidDeviceSignature',
    )
    expect(await net.contracts.deviceRegistry.read.isActive([device])).toBe(false)
  })

  it('rejects proofs made for another chain or another registry', async () => {
    const owner = await net.actor()
    const deviceKey = generatePrivateKey()
    const device = privateKeyToAccount(deviceKey).address
    for (const signature of [
      await possession(deviceKey, owner.address, 1, net.chainId + 1),
      await possession(deviceKey, owner.address, 1, net.chainId, net.deployment.contracts.epochManager),
    ]) {
      await expectRevert(
        owner.contracts.deviceRegistry.write.register([device, 1, BERLIN, signature, '0x']),
        'RegistryInvalidDeviceSignature',
      )
    }
  })

  it('rejects a replayed registration, an unknown class, an invalid cell and a retired device', async () => {
    const owner = await net.actor()
    const deviceKey = generatePrivateKey()
    const device = privateKeyToAccount(deviceKey).address
    const signature = await possession(deviceKey, owner.address, 1)
    await net.send(
      owner.contracts.deviceRegistry.write.register([device, 1, BERLIN, signature, '0x']),
      owner.clients,
    )
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([device, 1, BERLIN, signature, '0x']),
      'RegistryDeviceExists',
    )
    const other = generatePrivateKey()
    const otherDevice = privateKeyToAccount(other).address
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([
        otherDevice,
        9,
        BERLIN,
        await possession(other, owner.address, 9),
        '0x',
      ]),
      'RegistryUnknownClass',
    )
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([
        otherDevice,
        1,
        12345n,
        await possession(other, owner.address, 1),
        '0x',
      ]),
      'RegistryInvalidCell',
    )
    await net.send(owner.contracts.deviceRegistry.write.retire([device]), owner.clients)
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([device, 1, BERLIN, signature, '0x']),
      'RegistryDeviceRetired',
    )
  })

  it('registers many devices in one call, each with its own proof, or none when one of them fails', async () => {
    const owner = await net.actor()
    const keys = Array.from({ length: 3 }, () => generatePrivateKey())
    const devices = keys.map((key) => privateKeyToAccount(key).address)
    const registrations = await Promise.all(
      keys.map(async (key, i) => ({
        device: devices[i] as Address,
        deviceClass: 1,
        h3Cell: i === 2 ? LISBON : BERLIN,
        deviceSignature: await possession(key, owner.address, 1),
        makerSignature: '0x' as Hex,
      })),
    )
    expect(await net.contracts.deviceRegistry.read.statusesOf([devices])).toEqual([0, 0, 0])
    // one forged proof among them (signed by another key): the whole call reverts, nothing registered
    const forged = { ...(registrations[1] as (typeof registrations)[number]) }
    forged.deviceSignature = await possession(keys[0] as Hex, owner.address, 1)
    const args = await expectRevert(
      owner.contracts.deviceRegistry.write.registerMany([
        [registrations[0], forged, registrations[2]] as never,
      ]),
      'RegistryInvalidDeviceSignature',
    )
    expect(args[0]).toBe(devices[1])
    expect(await net.contracts.deviceRegistry.read.statusesOf([devices])).toEqual([0, 0, 0])
    await net.send(owner.contracts.deviceRegistry.write.registerMany([registrations]), owner.clients)
    expect(await net.contracts.deviceRegistry.read.statusesOf([devices])).toEqual([1, 1, 1])
    expect(await net.contracts.deviceRegistry.read.activeDevices()).toBe(3n)
    expect((await net.contracts.deviceRegistry.read.getDevice([devices[2] as Address])).h3Cell).toBe(LISBON)
    const events = await net.contracts.deviceRegistry.getEvents.DeviceRegistered()
    expect(events.map((e) => e.args.device)).toEqual(devices)
    // registering one of them again, in a batch, is a replay as with register
    await expectRevert(
      owner.contracts.deviceRegistry.write.registerMany([[registrations[0]] as never]),
      'RegistryDeviceExists',
    )
  })

  it('requires a registered maker attestation where the class says so', async () => {
    const owner = await net.actor()
    const maker = privateKeyToAccount(generatePrivateKey())
    const deviceKey = generatePrivateKey()
    const device = privateKeyToAccount(deviceKey).address
    const proof = await possession(deviceKey, owner.address, 2)
    const attest = (signer: typeof maker) =>
      signer.signTypedData({
        domain: depinDomain(net.chainId, net.deployment.contracts.deviceRegistry),
        types: makerAttestationTypes,
        primaryType: 'MakerAttestation',
        message: { device, deviceClass: 2 },
      })
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([device, 2, BERLIN, proof, '0x']),
      'RegistryInvalidMakerAttestation',
    )
    await expectRevert(
      owner.contracts.deviceRegistry.write.register([device, 2, BERLIN, proof, await attest(maker)]),
      'RegistryInvalidMakerAttestation',
    )
    await expectRevert(
      owner.contracts.deviceRegistry.write.setMaker([maker.address, 2, true]),
      'OwnableUnauthorizedAccount',
    )
    await net.send(net.contracts.deviceRegistry.write.setMaker([maker.address, 2, true]))
    await net.send(
      owner.contracts.deviceRegistry.write.register([device, 2, BERLIN, proof, await attest(maker)]),
      owner.clients,
    )
    const [event] = await net.contracts.deviceRegistry.getEvents.DeviceRegistered({ device })
    expect(event?.args.maker).toBe(maker.address)
  })

  it('lets only the owner transfer, relocate (after the cooldown) and retire', async () => {
    const owner = await net.actor()
    const buyer = await net.actor()
    const deviceKey = generatePrivateKey()
    const device = privateKeyToAccount(deviceKey).address
    await net.send(
      owner.contracts.deviceRegistry.write.register([
        device,
        1,
        BERLIN,
        await possession(deviceKey, owner.address, 1),
        '0x',
      ]),
      owner.clients,
    )
    await expectRevert(
      buyer.contracts.deviceRegistry.write.transfer([device, buyer.address]),
      'RegistryNotDeviceOwner',
    )
    await expectRevert(
      owner.contracts.deviceRegistry.write.transfer([device, zeroAddress]),
      'RegistryInvalidOwner',
    )
    await net.send(owner.contracts.deviceRegistry.write.transfer([device, buyer.address]), owner.clients)
    expect((await net.contracts.deviceRegistry.read.getDevice([device])).owner).toBe(buyer.address)
    await expectRevert(owner.contracts.deviceRegistry.write.retire([device]), 'RegistryNotDeviceOwner')

    await expectRevert(
      buyer.contracts.deviceRegistry.write.relocate([device, LISBON]),
      'RegistryRelocationCooldown',
    )
    await net.warp(3_600)
    await net.send(buyer.contracts.deviceRegistry.write.relocate([device, LISBON]), buyer.clients)
    expect((await net.contracts.deviceRegistry.read.getDevice([device])).h3Cell).toBe(LISBON)
    const [moved] = await net.contracts.deviceRegistry.getEvents.DeviceRelocated({ device })
    expect(moved?.args).toMatchObject({ fromCell: BERLIN, toCell: LISBON })
    await expectRevert(
      buyer.contracts.deviceRegistry.write.relocate([device, BERLIN]),
      'RegistryRelocationCooldown',
    )

    await net.send(buyer.contracts.deviceRegistry.write.retire([device]), buyer.clients)
    expect(await net.contracts.deviceRegistry.read.isActive([device])).toBe(false)
    expect(await net.contracts.deviceRegistry.read.activeDevices()).toBe(0n)
    await expectRevert(
      buyer.contracts.deviceRegistry.write.transfer([device, owner.address]),
      'RegistryDeviceRetired',
    )
    await expectRevert(buyer.contracts.deviceRegistry.write.retire([device]), 'RegistryDeviceRetired')
    const unknown = privateKeyToAccount(generatePrivateKey()).address
    await expectRevert(buyer.contracts.deviceRegistry.write.retire([unknown]), 'RegistryUnknownDevice')
  })

  it('keeps the gateway list: governance adds, the gateway or governance changes its URL and removes it', async () => {
    const registry = net.contracts.deviceRegistry
    const gateway = await net.actor()
    const stranger = await net.actor()
    await net.send(registry.write.addGateway([gateway.address, 'http://127.0.0.1:8546']))
    await expectRevert(
      registry.write.addGateway([gateway.address, 'http://elsewhere']),
      'RegistryGatewayExists',
    )
    await expectRevert(
      stranger.contracts.deviceRegistry.write.addGateway([stranger.address, 'http://x']),
      'OwnableUnauthorizedAccount',
    )
    await expectRevert(registry.write.addGateway([stranger.address, '']), 'RegistryInvalidGatewayUrl')
    await expectRevert(
      registry.write.addGateway([stranger.address, `http://${'a'.repeat(250)}`]),
      'RegistryInvalidGatewayUrl',
    )
    expect(await registry.read.gateways()).toEqual([[gateway.address], ['http://127.0.0.1:8546']])

    await expectRevert(
      stranger.contracts.deviceRegistry.write.setGatewayUrl([gateway.address, 'http://evil']),
      'RegistryNotGatewayOrOwner',
    )
    await net.send(
      gateway.contracts.deviceRegistry.write.setGatewayUrl([gateway.address, 'https://gw.example']),
      gateway.clients,
    )
    const [changed] = await registry.getEvents.GatewayUrlChanged({ gateway: gateway.address })
    expect(changed?.args.url).toBe('https://gw.example')

    const second = await net.actor()
    await net.send(registry.write.addGateway([second.address, 'http://second']))
    await expectRevert(
      stranger.contracts.deviceRegistry.write.removeGateway([gateway.address]),
      'RegistryNotGatewayOrOwner',
    )
    await net.send(gateway.contracts.deviceRegistry.write.removeGateway([gateway.address]), gateway.clients)
    expect(await registry.read.gateways()).toEqual([[second.address], ['http://second']])
    await expectRevert(registry.write.removeGateway([gateway.address]), 'RegistryUnknownGateway')
    await net.send(registry.write.removeGateway([second.address]))
    expect(await registry.read.gateways()).toEqual([[], []])
  })

  it('caps the gateway list', async () => {
    const registry = net.contracts.deviceRegistry
    const max = await registry.read.MAX_GATEWAYS()
    for (let i = 0n; i < max; i++) {
      await net.send(
        registry.write.addGateway([privateKeyToAccount(generatePrivateKey()).address, `http://g${i}`]),
      )
    }
    await expectRevert(
      registry.write.addGateway([privateKeyToAccount(generatePrivateKey()).address, 'http://one-more']),
      'RegistryGatewayLimit',
    )
  })
})
