/**
 * The network definition ("blueprint"): device classes with their reading schemas and quality
 * rules, epochs, emission and reward split. Decimal quantities are written as strings in human
 * units and converted here, exactly, to the integers the protocol uses: nothing that decides
 * acceptance or rewards ever touches floating point.
 */
import { z } from 'zod'

const DECIMAL = /^-?\d+(\.\d+)?$/

/** Parses a decimal string exactly into an integer scaled by 10^scale ("-12.5", 2 → -1250n). */
export function parseScaled(value: string, scale: number): bigint {
  if (!DECIMAL.test(value)) throw new Error(`"${value}" is not a decimal number`)
  const negative = value.startsWith('-')
  const [whole = '0', fraction = ''] = (negative ? value.slice(1) : value).split('.')
  if (fraction.length > scale) throw new Error(`"${value}" has more than ${scale} decimals`)
  const scaled = BigInt(whole + fraction.padEnd(scale, '0'))
  return negative ? -scaled : scaled
}

const decimal = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const text = String(v)
  if (!DECIMAL.test(text)) {
    ctx.addIssue({ code: 'custom', message: `expected a decimal number, got "${text}"` })
    return z.NEVER
  }
  return text
})
const wholeTokens = decimal.transform((v) => parseScaled(v, 18))
const seconds = z.number().int().positive()

const fieldSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'lower-case identifier'),
  unit: z.string(),
  /** Decimal places kept: the integer on the wire is value × 10^scale. */
  scale: z.number().int().min(0).max(18),
  min: decimal,
  max: decimal,
})

const deviceClassSchema = z
  .object({
    id: z.number().int().min(0).max(0xffffffff),
    name: z.string().min(1),
    requiresMaker: z.boolean().default(false),
    /** The environment's: the reading's fields (other use cases' records have kinds of their own). */
    fields: z.array(fieldSchema).max(32).default([]),
    /** The class's parameters for the use case's rules (checked by the use case). */
    parameters: z.record(z.string(), z.unknown()).optional(),
    quality: z
      .object({
        minIntervalSeconds: z.number().int().nonnegative(),
        stuckWindow: z.number().int().min(2),
        expectedReadingsPerEpoch: z.number().int().positive(),
        spatial: z.object({
          resolution: z.number().int().min(0).max(15),
          ringSize: z.number().int().min(1).max(10),
          minNeighbours: z.number().int().min(1),
          madMultiplier: z.number().int().positive(),
          minDeviation: z.array(decimal),
        }),
      })
      .optional(),
  })
  .superRefine((cls, ctx) => {
    const names = new Set<string>()
    cls.fields.forEach((field, i) => {
      if (names.has(field.name))
        ctx.addIssue({ code: 'custom', path: ['fields', i, 'name'], message: 'duplicate field' })
      names.add(field.name)
      for (const bound of ['min', 'max'] as const) {
        try {
          parseScaled(field[bound], field.scale)
        } catch (error) {
          ctx.addIssue({ code: 'custom', path: ['fields', i, bound], message: (error as Error).message })
        }
      }
    })
    if (cls.quality && cls.quality.spatial.minDeviation.length !== cls.fields.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['quality', 'spatial', 'minDeviation'],
        message: `needs one value per field (${cls.fields.length})`,
      })
    }
  })

const bps = z.number().int().min(0).max(10_000)

/**
 * The data market: prices in whole payment tokens (18 decimals) per item the API delivers, the
 * split of every redeemed amount, and the withdrawal delay of deposits.
 */
const marketSchema = z
  .object({
    /** Seconds between a consumer announcing a withdrawal and taking it; providers redeem meanwhile. */
    withdrawalDelaySeconds: z.number().int().nonnegative().default(3_600),
    prices: z.object({
      /** Each reading `/v1/readings` delivers. */
      reading: wholeTokens,
      /** Each `/v1/aggregate` answer (its readings count as served). */
      aggregate: wholeTokens,
      /** Each reading `/v1/stream` delivers. */
      streamedReading: wholeTokens,
    }),
    split: z.object({
      /** To the owners of the served readings' devices, pro rata of readings served. */
      deviceOwnersBps: bps,
      /** To the provider (the API operator) that served them. */
      providerBps: bps,
      /** To the protocol's treasury. */
      protocolBps: bps,
    }),
  })
  .superRefine((m, ctx) => {
    if (m.split.deviceOwnersBps + m.split.providerBps + m.split.protocolBps !== 10_000) {
      ctx.addIssue({
        code: 'custom',
        path: ['split'],
        message: 'deviceOwnersBps + providerBps + protocolBps must be 10000',
      })
    }
  })

export const blueprintSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'lower-case name'),
    description: z.string().default(''),
    /** The use case whose rules judge the network's records (src/usecases/registry.ts). */
    useCase: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, 'lower-case name')
      .default('environment'),
    epochs: z.object({
      lengthSeconds: seconds,
      maxClockSkewSeconds: z.number().int().nonnegative(),
      sealDelaySeconds: z.number().int().nonnegative(),
    }),
    token: z.object({
      name: z.string().min(1),
      symbol: z.string().min(1),
      genesisSupply: wholeTokens,
      initialEpochEmission: wholeTokens,
      halvingIntervalEpochs: z.number().int().positive(),
    }),
    rewards: z.object({
      deviceShareBps: z.number().int().min(0).max(10_000),
      validatorShareBps: z.number().int().min(0).max(10_000),
    }),
    validators: z.object({
      minBond: wholeTokens,
      unbondingDelaySeconds: z.number().int().nonnegative(),
      maxValidators: z.number().int().min(1).max(31),
      slashRewardBps: z.number().int().min(0).max(10_000),
    }),
    registry: z.object({ relocationCooldownSeconds: z.number().int().nonnegative() }),
    /** What consumers pay for the network's data (src/market/), and how the fees are split. */
    market: marketSchema.optional(),
    /** The use case's parameters (checked by the use case: UseCase.blueprintProblems). */
    parameters: z.record(z.string(), z.unknown()).optional(),
    deviceClasses: z.array(deviceClassSchema).min(1),
  })
  .superRefine((bp, ctx) => {
    if (bp.rewards.deviceShareBps + bp.rewards.validatorShareBps !== 10_000) {
      ctx.addIssue({
        code: 'custom',
        path: ['rewards'],
        message: 'deviceShareBps + validatorShareBps must be 10000',
      })
    }
    const ids = new Set<number>()
    bp.deviceClasses.forEach((cls, i) => {
      if (ids.has(cls.id))
        ctx.addIssue({ code: 'custom', path: ['deviceClasses', i, 'id'], message: 'duplicate id' })
      ids.add(cls.id)
    })
  })

export type BlueprintInput = z.input<typeof blueprintSchema>
export type ParsedBlueprint = z.output<typeof blueprintSchema>
