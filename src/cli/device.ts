import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { latLngToCell } from 'h3-js'
import { type Account, type Address, getAddress, isAddress } from 'viem'
import { type Blueprint, loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { operatorKeyOrLocalDefault } from '../chain/connectChain.ts'
import { createChainClients } from '../chain/createChainClients.ts'
import { readDeployment } from '../chain/deployment.ts'
import { deploymentPath } from '../chain/ensureDeployed.ts'
import { getContracts } from '../chain/getContracts.ts'
import { createDevice } from '../device/createDevice.ts'
import { createDeviceKey } from '../device/createDeviceKey.ts'
import { createMqttTransport } from '../device/createMqttTransport.ts'
import { createVerdictVerifier, type DeviceTransportEvent } from '../device/createVerdictVerifier.ts'
import { loadDeviceKey } from '../device/loadDeviceKey.ts'
import { type GatewayList, openGatewayList } from '../device/openGatewayList.ts'
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

/** The chain `depin device send` reads the gateway list from, when no `--rpc-url` is given. */
export const DEFAULT_DEVICE_RPC_URL = 'http://127.0.0.1:8545'

/**
 * The gateways whose verdicts a device believes: the fixed addresses of `gatewayAddresses` (or
 * `DEPIN_GATEWAYS`, comma-separated) for a device without RPC access; else the DeviceRegistry's
 * list read over `rpcUrl` (or `DEPIN_RPC_URL`, default http://127.0.0.1:8545, as for `init`).
 */
export function deviceGatewayList(options: {
  deviceRegistry: Address
  rpcUrl?: string | undefined
  gatewayAddresses?: string | undefined
}): GatewayList {
  const fixed = options.gatewayAddresses ?? process.env.DEPIN_GATEWAYS
  if (fixed !== undefined && fixed.trim() !== '') {
    const addresses = fixed.split(',').map((text) => {
      const address = text.trim()
      if (!isAddress(address)) {
        throw new ConfigError('INVALID_ADDRESS', `gateway address "${address}" is not an address`)
      }
      return getAddress(address)
    })
    return openGatewayList({ addresses })
  }
  const rpcUrl = options.rpcUrl ?? process.env.DEPIN_RPC_URL ?? DEFAULT_DEVICE_RPC_URL
  return openGatewayList({ rpcUrl, deviceRegistry: options.deviceRegistry })
}

/**
 * `depin device send --values temperature=21.5,…`: signs one reading with the device's next
 * sequence number and sends it, over HTTP or MQTT, after any queued earlier; prints what became
 * of each. A reading leaves the queue only on a verdict signed by a gateway on the registry's
 * list (read over `DEPIN_RPC_URL`), or on `DEPIN_GATEWAYS` for a device without RPC access; an
 * answer that is not one is named on stderr (`ignored VERDICT_FORGED: …`). Exit status: 0 all
 * accepted, 1 one was rejected, 3 one waits in the queue (resent first next time).
 */
export async function runDeviceSend(
  options: DeviceOptions & {
    values: string
    gateway: string
    mqttUrl?: string
    stateDir?: string
    /** The chain to read the gateway list from (default `DEPIN_RPC_URL`, else http://127.0.0.1:8545). */
    rpcUrl?: string
    /** Comma-separated gateway addresses to believe instead of the registry's list (default `DEPIN_GATEWAYS`). */
    gatewayAddresses?: string
  },
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
  const { chainId } = deployment
  const { deviceRegistry } = deployment.contracts
  const gateways = deviceGatewayList({
    deviceRegistry,
    rpcUrl: options.rpcUrl,
    gatewayAddresses: options.gatewayAddresses,
  })
  const onEvent = (event: DeviceTransportEvent) =>
    console.error(`${event.type === 'verdict_ignored' ? 'ignored' : 'error'} ${event.code}: ${event.message}`)
  const transport = options.mqttUrl
    ? createMqttTransport({
        brokerUrl: options.mqttUrl,
        verifier: createVerdictVerifier({ chainId, deviceRegistry, gateways }),
        onEvent,
      })
    : undefined
  try {
    const device = createDevice({
      account: loadDeviceKey(options.keyFile),
      chainId,
      deviceRegistry,
      ...(transport ? { transport } : { gatewayUrl: options.gateway, gateways, onEvent }),
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
