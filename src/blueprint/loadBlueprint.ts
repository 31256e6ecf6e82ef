import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Hex } from 'viem'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { defaultNetworkParameters, type NetworkParameters } from '../chain/deployment.ts'
import { ConfigError } from '../errors.ts'
import { USE_CASES } from '../usecases/registry.ts'
import { blueprintSchema, type ParsedBlueprint, parseScaled } from './blueprintSchema.ts'
import { computeRulesHash } from './rulesHash.ts'

/** A reading field with its bounds as fixed-point integers (value × 10^scale). */
export type BlueprintField = { name: string; unit: string; scale: number; min: bigint; max: bigint }

export type DeviceClassRules = {
  id: number
  name: string
  requiresMaker: boolean
  /** The environment's reading fields (empty for other use cases). */
  fields: BlueprintField[]
  /** The class's parameters for its use case's rules, as the blueprint gives them. */
  parameters?: Readonly<Record<string, unknown>>
  /** The environment's quality rules (absent for other use cases). */
  quality?: {
    minIntervalSeconds: bigint
    stuckWindow: number
    expectedReadingsPerEpoch: number
    spatial: {
      resolution: number
      ringSize: number
      minNeighbours: number
      madMultiplier: bigint
      /** Per field, fixed-point like the values. */
      minDeviation: bigint[]
    }
  }
}

/** A validated blueprint, every quantity already an exact integer. */
export type Blueprint = Omit<ParsedBlueprint, 'deviceClasses'> & {
  deviceClasses: DeviceClassRules[]
  /** The class rules by id. */
  classById: ReadonlyMap<number, DeviceClassRules>
  /** What every report of a network deployed from this blueprint names (rulesHash.ts). */
  rulesHash: Hex
}

/** Validates a parsed blueprint object; errors name the field (`deviceClasses.0.fields.1.max: …`). */
export function compileBlueprint(raw: unknown, source = 'blueprint'): Blueprint {
  const parsed = blueprintSchema.safeParse(raw)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new ConfigError('BLUEPRINT_INVALID', `${source}: ${lines.join('; ')}`, {
      details: { issues: parsed.error.issues },
    })
  }
  const bp = parsed.data
  const useCase = Object.hasOwn(USE_CASES, bp.useCase) ? USE_CASES[bp.useCase] : undefined
  if (!useCase) {
    throw new ConfigError(
      'BLUEPRINT_INVALID',
      `${source}: useCase: "${bp.useCase}" is not a use case of this build (${Object.keys(USE_CASES).join(', ')})`,
    )
  }
  const deviceClasses: DeviceClassRules[] = bp.deviceClasses.map((cls) => ({
    id: cls.id,
    name: cls.name,
    requiresMaker: cls.requiresMaker,
    fields: cls.fields.map((f) => ({
      name: f.name,
      unit: f.unit,
      scale: f.scale,
      min: parseScaled(f.min, f.scale),
      max: parseScaled(f.max, f.scale),
    })),
    ...(cls.parameters ? { parameters: cls.parameters } : {}),
    ...(cls.quality
      ? {
          quality: {
            minIntervalSeconds: BigInt(cls.quality.minIntervalSeconds),
            stuckWindow: cls.quality.stuckWindow,
            expectedReadingsPerEpoch: cls.quality.expectedReadingsPerEpoch,
            spatial: {
              ...cls.quality.spatial,
              madMultiplier: BigInt(cls.quality.spatial.madMultiplier),
              minDeviation: cls.quality.spatial.minDeviation.map((d, i) =>
                parseScaled(d, cls.fields[i]?.scale ?? 0),
              ),
            },
          },
        }
      : {}),
  }))
  const blueprint: Blueprint = {
    ...bp,
    deviceClasses,
    classById: new Map(deviceClasses.map((c) => [c.id, c])),
    rulesHash: computeRulesHash(bp, useCase),
  }
  // what only the use case knows: its classes' and its own parameters
  const problems = useCase.blueprintProblems?.(blueprint) ?? []
  if (problems.length > 0)
    throw new ConfigError('BLUEPRINT_INVALID', `${source}: ${problems.join('; ')}`, {
      details: { issues: problems },
    })
  return blueprint
}

/** The file of a blueprint given by path, or by the name of one of the repository's (`connectivity`). */
export function blueprintPathOf(pathOrName: string): string {
  return /^[a-z][a-z0-9-]*$/.test(pathOrName) && !existsSync(pathOrName)
    ? fileURLToPath(new URL(`../../blueprints/${pathOrName}.yaml`, import.meta.url))
    : pathOrName
}

/**
 * Reads a YAML or JSON blueprint file and validates it. A bare name (`connectivity`) is one of the
 * repository's blueprints, `blueprints/<name>.yaml`.
 */
export function loadBlueprint(pathOrName: string): Blueprint {
  const path = blueprintPathOf(pathOrName)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new ConfigError('BLUEPRINT_NOT_FOUND', `cannot read blueprint ${path}`, { cause })
  }
  let raw: unknown
  try {
    raw = parseYaml(text)
  } catch (cause) {
    const where = cause instanceof YAMLParseError ? ` (line ${cause.linePos?.[0].line})` : ''
    throw new ConfigError('BLUEPRINT_INVALID', `${path}: not valid YAML${where}`, { cause })
  }
  return compileBlueprint(raw, path)
}

/** The contract parameters a blueprint fixes at deployment. */
export function networkParametersOf(blueprint: Blueprint, genesisTime?: bigint): NetworkParameters {
  return {
    token: {
      name: blueprint.token.name,
      symbol: blueprint.token.symbol,
      genesisSupply: blueprint.token.genesisSupply,
      initialEpochEmission: blueprint.token.initialEpochEmission,
      halvingInterval: BigInt(blueprint.token.halvingIntervalEpochs),
    },
    registry: {
      relocationCooldown: BigInt(blueprint.registry.relocationCooldownSeconds),
      deviceClasses: blueprint.deviceClasses.map((c) => ({ id: c.id, requiresMaker: c.requiresMaker })),
    },
    validators: {
      minBond: blueprint.validators.minBond,
      unbondingDelay: BigInt(blueprint.validators.unbondingDelaySeconds),
      maxValidators: BigInt(blueprint.validators.maxValidators),
      slashRewardBps: BigInt(blueprint.validators.slashRewardBps),
    },
    market: {
      withdrawalDelay: BigInt(
        blueprint.market?.withdrawalDelaySeconds ?? defaultNetworkParameters.market.withdrawalDelay,
      ),
    },
    epochs: {
      epochLength: BigInt(blueprint.epochs.lengthSeconds),
      ...(genesisTime !== undefined ? { genesisTime } : {}),
    },
    rulesHash: blueprint.rulesHash,
  }
}
