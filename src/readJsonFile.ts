import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { z } from 'zod'
import { ConfigError } from './errors.ts'

/**
 * Reads a JSON file and validates it with `schema`. Either failure is a ConfigError with `code`
 * that names `what` and the file, and, for an invalid file, its first bad field
 * (`deployment file .data/deployment.json: contracts.epochManager: …`; every issue in details).
 */
export function readJsonFile<T extends z.ZodType>(
  path: string,
  schema: T,
  code: string,
  what: string,
): z.output<T> {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (cause) {
    throw new ConfigError(code, `cannot read ${what} ${path}`, { cause })
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ConfigError(code, `${what} ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`, {
      details: { issues: parsed.error.issues },
    })
  }
  return parsed.data
}

/**
 * The config with its `paths` fields (those present) made absolute, relative to the folder of
 * the config file at `path`, as config files of depin processes read.
 */
export function resolveConfigPaths<T extends Record<string, unknown>, K extends keyof T & string>(
  path: string,
  config: T,
  paths: readonly K[],
): T {
  const base = dirname(resolve(path))
  const resolved: Record<string, unknown> = { ...config }
  for (const key of paths) {
    const value = config[key]
    if (typeof value === 'string') resolved[key] = resolve(base, value)
  }
  return resolved as T
}
