import { chmodSync, existsSync, renameSync, writeFileSync } from 'node:fs'
import { getAddress, keccak256, toHex } from 'viem'
import { z } from 'zod'
import { ConfigError } from '../errors.ts'
import { readJsonFile } from '../readJsonFile.ts'

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'an 0x-prefixed 20-byte address')
  .transform((a) => getAddress(a))
const bytes32 = z
  .string()
  .regex(/^0x[0-9a-f]{64}$/, 'an 0x-prefixed 32-byte lower-case hex value')
  .transform((v) => v as `0x${string}`)
const uint = z
  .union([z.string().regex(/^\d+$/, 'a non-negative integer'), z.number().int().nonnegative(), z.bigint()])
  .transform((v) => BigInt(v))

/** Tunables of a network's contracts, fixed at deployment. */
export const networkParametersSchema = z.object({
  token: z.object({
    name: z.string().min(1),
    symbol: z.string().min(1),
    /** Minted to the deployer at genesis to bootstrap validator bonds. */
    genesisSupply: uint,
    /** Tokens per epoch before the first halving. */
    initialEpochEmission: uint,
    /** Epochs between halvings. */
    halvingInterval: uint.refine((v) => v > 0n, 'must be > 0'),
  }),
  registry: z.object({
    relocationCooldown: uint,
    deviceClasses: z.array(
      z.object({ id: z.number().int().min(0).max(0xffffffff), requiresMaker: z.boolean() }),
    ),
  }),
  validators: z.object({
    minBond: uint.refine((v) => v > 0n, 'must be > 0'),
    unbondingDelay: uint,
    maxValidators: uint.refine((v) => v >= 1n && v <= 31n, 'must be 1..31'),
    slashRewardBps: uint.refine((v) => v <= 10_000n, 'must be ≤ 10000'),
  }),
  market: z.object({
    /** Seconds between a consumer announcing a withdrawal and taking it (providers redeem meanwhile). */
    withdrawalDelay: uint.refine((v) => v < 2n ** 64n, 'must fit in 64 bits'),
    /** The protocol's account for its share of fees (default: the deployer). */
    treasury: address.optional(),
  }),
  epochs: z.object({
    /** Start of epoch 0, unix seconds; omit to use the deployment block's time. */
    genesisTime: uint.optional(),
    epochLength: uint.refine((v) => v > 0n, 'must be > 0'),
  }),
  /**
   * The rules every report must name (a blueprint's rulesHash), pinned in the EpochManager;
   * omitted, NO_RULES_HASH (a network no blueprint's validators can serve).
   */
  rulesHash: bytes32.optional(),
})
export type NetworkParameters = z.output<typeof networkParametersSchema>
export type NetworkParametersInput = z.input<typeof networkParametersSchema>

const WAD = 10n ** 18n

/** Defaults for a local network: 30 s epochs, 1,000 tokens per epoch halving every 100,000 epochs. */
export const defaultNetworkParameters: NetworkParameters = {
  token: {
    name: 'Depin Token',
    symbol: 'DPIN',
    genesisSupply: 1_000_000n * WAD,
    initialEpochEmission: 1_000n * WAD,
    halvingInterval: 100_000n,
  },
  registry: { relocationCooldown: 86_400n, deviceClasses: [{ id: 1, requiresMaker: false }] },
  validators: {
    minBond: 1_000n * WAD,
    unbondingDelay: 7n * 86_400n,
    maxValidators: 31n,
    slashRewardBps: 1_000n,
  },
  market: { withdrawalDelay: 3_600n },
  epochs: { epochLength: 30n },
}

/** The rules hash of a network deployed without a blueprint's (every blueprint's differs). */
export const NO_RULES_HASH = keccak256(toHex('depin.rules.none'))

export const deploymentSchema = z.object({
  version: z.literal(1),
  chainId: z.number().int().positive(),
  deployer: address,
  /** Block of the first deployment transaction: where an indexer starts. */
  startBlock: uint,
  genesisTime: uint,
  epochLength: uint,
  /** The rules hash the EpochManager pins (absent in files written before it was recorded). */
  rulesHash: bytes32.optional(),
  /** protocolCodeHash of the code deployed (absent in files written before it was recorded). */
  codeHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  contracts: z.object({
    depinToken: address,
    deviceRegistry: address,
    validatorSet: address,
    epochManager: address,
    rewardDistributor: address,
    dataMarket: address,
  }),
})
export type Deployment = z.output<typeof deploymentSchema>

/** Writes the deployment file atomically (temp file, then rename). */
export function writeDeployment(path: string, deployment: Deployment): void {
  const json = JSON.stringify(deployment, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)
  const tmp = `${path}.tmp`
  writeFileSync(tmp, `${json}\n`)
  chmodSync(tmp, 0o644)
  renameSync(tmp, path)
}

/** Reads and validates a deployment file; errors name the file and the bad field. */
export function readDeployment(path: string): Deployment {
  if (!existsSync(path)) {
    throw new ConfigError(
      'DEPLOYMENT_NOT_FOUND',
      `no deployment file at ${path}; run \`depin deploy\` first`,
      {
        details: { path },
      },
    )
  }
  return readJsonFile(path, deploymentSchema, 'DEPLOYMENT_INVALID', 'deployment file')
}

/** The epoch running at unix time `now` (epoch 0 before genesis). */
export function runningEpoch(now: bigint, epochs: { genesisTime: bigint; epochLength: bigint }): bigint {
  return now < epochs.genesisTime ? 0n : (now - epochs.genesisTime) / epochs.epochLength
}
