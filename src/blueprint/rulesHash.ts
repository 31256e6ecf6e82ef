/**
 * A network's rules hash: what every validator must run for its reports to count. keccak-256 of
 * the canonical JSON (keys sorted, integers as decimal strings) of the blueprint as validated
 * (defaults filled, its free-text description left out), the use case's id and version, and the
 * version of the pipeline's own checks. Pinned in the EpochManager at deployment and named by
 * every report; anyone can recompute it from the blueprint file (`depin status` shows it).
 */
import { type Hex, keccak256, toHex } from 'viem'
import { PIPELINE_RULES_VERSION } from '../validator/judge/judgement.ts'

/** JSON with object keys sorted at every level and bigints as decimal strings: one spelling per value. */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'bigint') return JSON.stringify(value.toString())
  // one spelling per text: "µ" typed as U+00B5 or U+03BC… normalised (NFC) alike
  if (typeof value === 'string') return JSON.stringify(value.normalize('NFC'))
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not JSON: ${value}`)
    return JSON.stringify(value)
  }
  if (value === null || typeof value === 'boolean') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  // a Map, a Date or a function would hash as {} or nothing: refuse rather than hash it wrong
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype)
    throw new TypeError(`canonicalJson takes plain data only, not ${Object.prototype.toString.call(value)}`)
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

export function computeRulesHash(
  parsedBlueprint: { description?: string } & Record<string, unknown>,
  useCase: { id: string; version: number },
): Hex {
  const { description: _, ...rules } = parsedBlueprint
  return keccak256(
    toHex(
      canonicalJson({
        blueprint: rules,
        useCase: { id: useCase.id, version: useCase.version },
        pipeline: PIPELINE_RULES_VERSION,
      }),
    ),
  )
}
