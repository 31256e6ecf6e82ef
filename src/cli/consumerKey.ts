/**
 * The data-market consumer as the CLI keeps it: its key file (`--consumer-key-file`, created with
 * mode 0600 when missing, funded only by its user) and, next to it, one channel file per provider
 * (`<key file>.channel-<provider>.json`, mode 0600, replaced atomically): what the consumer owes
 * that provider and its commitment to everything it was served, as createMarketClient keeps it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { type Address, formatUnits, getAddress, type Hex, type LocalAccount, parseUnits } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import { loadOrCreateKey } from '../chain/loadOrCreateKey.ts'
import { writeFileDurably } from '../device/writeFileDurably.ts'
import { ConfigError } from '../errors.ts'
import type { ConsumerChannel, MarketClientState } from '../market/createMarketClient.ts'

/** The network token's decimals: amounts on the command line are whole tokens with up to 18. */
export const TOKEN_DECIMALS = 18

/** Parses an amount of whole tokens (`12`, `0.5`), exactly; refuses floats' notations, signs and zero. */
export function parseTokenAmount(text: string, what: string): bigint {
  if (!/^\d+(\.\d{1,18})?$/.test(text)) {
    throw new ConfigError(
      'INVALID_AMOUNT',
      `${what} ${text} is not an amount of tokens: digits, with at most ${TOKEN_DECIMALS} decimals (e.g. 12.5)`,
    )
  }
  const amount = parseUnits(text, TOKEN_DECIMALS)
  if (amount === 0n) throw new ConfigError('INVALID_AMOUNT', `${what} must be more than 0`)
  return amount
}

/** An amount of the token's smallest unit in whole tokens with the symbol, e.g. `4.5 DPIN`. */
export const formatTokens = (amount: bigint, symbol: string) =>
  `${formatUnits(amount, TOKEN_DECIMALS)} ${symbol}`

/**
 * The consumer's account from its key file, creating the key (mode 0600, in one step) when the
 * file is missing; a key file others can read is refused (KEY_FILE_EXPOSED).
 */
export function loadConsumerKey(keyFile: string): {
  privateKey: Hex
  account: LocalAccount
  created: boolean
} {
  const created = !existsSync(keyFile)
  const privateKey = loadOrCreateKey(keyFile)
  return { privateKey, account: privateKeyToAccount(privateKey), created }
}

/** The line saying a consumer key was just made, and that nobody but its user funds it. */
export const createdKeyLine = (keyFile: string, address: Address) =>
  `created consumer key ${keyFile} (mode 0600) for ${address}: it holds nothing until you send it tokens, and ETH for gas`

/** Where the consumer keeps its channel with `provider`. */
export const channelPath = (keyFile: string, provider: Address) =>
  `${keyFile}.channel-${getAddress(provider)}.json`

const uint = z
  .string()
  .regex(/^(0|[1-9]\d*)$/, 'a non-negative decimal integer')
  .transform((v) => BigInt(v))
const channelFileSchema = z.object({
  provider: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/, 'an address')
    .transform((a) => getAddress(a)),
  owed: uint,
  served: z
    .string()
    .regex(/^0x[0-9a-f]{64}$/, 'a 32-byte hex value')
    .transform((v) => v as `0x${string}`),
  servedCount: uint,
})

/** Reads a channel file; a file that is not one is CHANNEL_STATE_INVALID (never silently reset). */
export function readChannelFile(path: string): ConsumerChannel {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (cause) {
    throw new ConfigError('CHANNEL_STATE_INVALID', `cannot read the channel file ${path}`, { cause })
  }
  const parsed = channelFileSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ConfigError(
      'CHANNEL_STATE_INVALID',
      `channel file ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    )
  }
  return parsed.data
}

/** Replaces the channel file atomically (temp file, fsync, rename), mode 0600. */
export function writeChannelFile(path: string, channel: ConsumerChannel): void {
  const json = {
    provider: getAddress(channel.provider),
    owed: channel.owed.toString(),
    served: channel.served,
    servedCount: channel.servedCount.toString(),
  }
  writeFileDurably(path, `${JSON.stringify(json, null, 2)}\n`, 0o600)
}

/**
 * The SDK's state for the consumer of `keyFile`: the channel file of the provider the client
 * signed in with (`provider()` names it; the SDK loads only after it learned it).
 */
export function channelFileState(keyFile: string, provider: () => Address | undefined): MarketClientState {
  return {
    load() {
      const current = provider()
      if (!current) return undefined
      const path = channelPath(keyFile, current)
      return existsSync(path) ? readChannelFile(path) : undefined
    },
    save(channel) {
      writeChannelFile(channelPath(keyFile, channel.provider), channel)
    },
  }
}

/** Every channel the consumer of `keyFile` keeps, with its file. */
export function listChannelFiles(keyFile: string): { path: string; channel: ConsumerChannel }[] {
  const dir = dirname(keyFile)
  const prefix = `${basename(keyFile)}.channel-`
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((name) => name.startsWith(prefix) && /^0x[0-9a-fA-F]{40}\.json$/.test(name.slice(prefix.length)))
    .sort()
    .map((name) => ({ path: join(dir, name), channel: readChannelFile(join(dir, name)) }))
}
