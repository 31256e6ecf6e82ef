import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { latLngToCell } from 'h3-js'
import type { Account } from 'viem'
import { type Blueprint, loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { operatorKeyOrLocalDefault } from '../chain/connectChain.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { getContracts } from '../chain/getContracts.ts'
import { createDevice } from '../device/createDevice.ts'
import { createDeviceKey } from '../device/createDeviceKey.ts'
import { createMqttTransport } from '../device/createMqttTransport.ts'
import { loadDeviceKey } from '../device/loadDeviceKey.ts'
import { registerDevice } from '../device/registerDevice.ts'
import { ConfigError } from '../errors.ts'

export type DeviceOptions = { dataDir: string; blueprint: string; keyFile: string; class?: string }

const classOf = (blueprint: Blueprint, text: string | undefined) => {
  const id = text === undefined ? blueprint.deviceClasses[0]?.id : Number(text)
  const found = id === undefined || !Number.isInteger(id) ? undefined : blueprint.classById.get(id)
  if (!found) {
    throw new ConfigError(
      'DEVICE_CLASS_UNKNOWN',
      `--class ${text}: blueprint ${blueprint.name} has classes ${blueprint.deviceClasses.map((c) => c.id).join(', ')}`,
    )
  }
  return found
}

const coordinate = (name: string, text: string, limit: number) => {
  const value = Number(text)
  if (!Number.isFinite(value) || Math.abs(value) > limit) {
    throw new ConfigError('INVALID_LOCATION', `--${name} ${text} is not a ${name} in degrees`)
  }
  return value
}

/**
 * `depin device init`: this machine becomes a device. Creates its key (mode 0600, never
 * overwritten) unless the key file exists, and registers it in the DeviceRegistry under the
 * owner's key, in its class and the resolution-8 H3 cell of `--lat`/`--lng`. Run again, it says
 * the device is registered already.
 */
export async function runDeviceInit(
  options: DeviceOptions & { lat: string; lng: string; rpcUrl: string; ownerKeyFile?: string },
): Promise<void> {
  const blueprint = loadBlueprint(options.blueprint)
  const deviceClass = classOf(blueprint, options.class)
  const cell = latLngToCell(coordinate('lat', options.lat, 90), coordinate('lng', options.lng, 180), 8)
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const fresh = !existsSync(options.keyFile)
  const device = fresh ? createDeviceKey(options.keyFile) : loadDeviceKey(options.keyFile)
  console.log(`device ${device.address} (key ${fresh ? 'created in' : 'read from'} ${options.keyFile})`)

  const ownerKey = operatorKeyOrLocalDefault(options.ownerKeyFile, deployment.chainId)
  if (!ownerKey) {
    throw new ConfigError(
      'SIGNER_MISSING',
      "registering needs the owner's key: --owner-key-file or DEPIN_PRIVATE_KEY (it pays the gas)",
    )
  }
  const owner = await createChainClients({ rpcUrl: options.rpcUrl, privateKey: ownerKey })
  const registered = await getContracts(owner, deployment).deviceRegistry.read.getDevice([device.address])
  if (registered.status !== 0) {
    console.log(
      `already registered: owner ${registered.owner}, class ${registered.deviceClass}, cell ${registered.h3Cell.toString(16)}, ${registered.status === 1 ? 'active' : 'retired'}`,
    )
    return
  }
  const hash = await registerDevice({
    clients: owner,
    deployment,
    deviceAccount: device,
    deviceClass: deviceClass.id,
    h3Cell: cell,
  })
  console.log(
    `registered in class ${deviceClass.id} (${deviceClass.name}) at cell ${cell}, owner ${(owner.account as Account).address}, tx ${hash}`,
  )
}

/**
 * `depin device send --values temperature=21.5,…`: signs one reading with the device's next
 * sequence number and sends it, over HTTP or MQTT, after any queued earlier; prints what became
 * of each. Exit status: 0 all accepted, 1 one was rejected, 3 one waits in the queue (resent
 * first next time).
 */
export async function runDeviceSend(
  options: DeviceOptions & { values: string; gateway: string; mqttUrl?: string; stateDir?: string },
): Promise<void> {
  const blueprint = loadBlueprint(options.blueprint)
  const deviceClass = classOf(blueprint, options.class)
  const deployment = readDeployment(deploymentPath(options.dataDir))
  const values: Record<string, string> = {}
  for (const part of options.values.split(',')) {
    const [name, value, ...rest] = part.split('=')
    if (!name || value === undefined || rest.length > 0) {
      throw new ConfigError('READING_INVALID', `--values: "${part}" is not field=value`)
    }
    values[name.trim()] = value.trim()
  }
  const transport = options.mqttUrl ? createMqttTransport({ brokerUrl: options.mqttUrl }) : undefined
  try {
    const device = createDevice({
      account: loadDeviceKey(options.keyFile),
      chainId: deployment.chainId,
      deviceRegistry: deployment.contracts.deviceRegistry,
      ...(transport ? { transport } : { gatewayUrl: options.gateway }),
      blueprint,
      deviceClass: deviceClass.id,
      stateDir: options.stateDir ?? join(options.dataDir, 'devices'),
    })
    const reading = await device.sign({ values })
    const result = await device.send([reading])
    for (const outcome of result.outcomes) {
      const what = `seq ${outcome.reading.seq} (time ${outcome.reading.time})`
      if (outcome.type === 'accepted') console.log(`accepted ${what}`)
      else if (outcome.type === 'rejected')
        console.log(`rejected ${what}: ${outcome.reason}: ${outcome.message}`)
      else console.log(`queued ${what}: ${outcome.message}`)
    }
    if (result.rejected > 0) process.exitCode = 1
    else if (result.queued > 0) process.exitCode = 3
  } finally {
    await transport?.close()
  }
}
