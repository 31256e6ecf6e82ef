import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { ConfigError } from '../errors.ts'
import { type ChainClients, createChainClients } from './createChainClients.ts'
import { anvilAccounts, LOCAL_CHAIN_ID, type StartAnvilReturnType, startAnvil } from './startAnvil.ts'

export type ConnectChainParameters = {
  /** Where the embedded chain keeps its state. */
  dataDir: string
  /** An external EVM endpoint; omit to run the embedded anvil. */
  rpcUrl?: string
  /** File holding the operator's private key (0x hex); must not be readable by others. */
  keyFile?: string
  /** Port for the embedded anvil (default: a free one). */
  port?: number
  /** Seconds between blocks of the embedded anvil (default: automine, a block per transaction). */
  blockTime?: number
}

export type ConnectChainReturnType = ChainClients & {
  rpcUrl: string
  /** The embedded anvil, when one was started. */
  anvil: StartAnvilReturnType | undefined
  /** Stops the embedded anvil if this call started it. */
  close(): Promise<void>
}

/**
 * Connects to the chain a command works against: `rpcUrl` when given (with a key from
 * `keyFile` or DEPIN_PRIVATE_KEY), else an embedded anvil whose state lives in `dataDir`,
 * operated with anvil's first well-known test key.
 */
export async function connectChain(parameters: ConnectChainParameters): Promise<ConnectChainReturnType> {
  if (parameters.rpcUrl) {
    const privateKey = readOperatorKey(parameters.keyFile)
    const clients = await createChainClients({
      rpcUrl: parameters.rpcUrl,
      ...(privateKey ? { privateKey } : {}),
      pollingInterval: 1_000,
    })
    return { ...clients, rpcUrl: parameters.rpcUrl, anvil: undefined, close: async () => {} }
  }
  const anvil = await startAnvil({
    dataDir: join(parameters.dataDir, 'chain'),
    ...(parameters.port !== undefined ? { port: parameters.port } : {}),
    ...(parameters.blockTime !== undefined ? { blockTime: parameters.blockTime } : {}),
  })
  try {
    const clients = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[0] })
    return { ...clients, rpcUrl: anvil.rpcUrl, anvil, close: () => anvil.stop() }
  } catch (error) {
    await anvil.stop()
    throw error
  }
}

/** Reads a private key from a 0600 file, or DEPIN_PRIVATE_KEY; refuses a key file others can read. */
export function readOperatorKey(keyFile: string | undefined): Hex | undefined {
  let raw: string | undefined
  if (keyFile) {
    if (!existsSync(keyFile)) throw new ConfigError('KEY_FILE_NOT_FOUND', `no key file at ${keyFile}`)
    const mode = statSync(keyFile).mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new ConfigError(
        'KEY_FILE_EXPOSED',
        `key file ${keyFile} is readable by others (mode ${mode.toString(8)}); run chmod 600 ${keyFile}`,
      )
    }
    raw = readFileSync(keyFile, 'utf8').trim()
  } else {
    raw = process.env.DEPIN_PRIVATE_KEY?.trim()
  }
  if (raw === undefined || raw === '') return undefined
  if (!/^0x[0-9a-fA-F]{64}$/.test(raw)) {
    throw new ConfigError(
      'KEY_INVALID',
      `the private key${keyFile ? ` in ${keyFile}` : ''} is not 0x + 64 hex digits`,
    )
  }
  return raw as Hex
}

/**
 * The key to sign with: the operator's (`--key-file` or DEPIN_PRIVATE_KEY), or, on the local
 * chain only, anvil's first test key (the local deployer and governance); undefined otherwise.
 */
export function operatorKeyOrLocalDefault(keyFile: string | undefined, chainId: number): Hex | undefined {
  return readOperatorKey(keyFile) ?? (chainId === LOCAL_CHAIN_ID ? anvilAccounts[0] : undefined)
}
