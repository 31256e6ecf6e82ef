import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { compileBlueprint } from '../../src/blueprint/loadBlueprint.ts'

/**
 * The shipped environment blueprint with short epochs (10 s, sealed 2 s after) and a fast
 * reading rhythm, so tests see epochs settle within seconds. `raw` is the object it was compiled
 * from (to write it to a file for another process).
 */
export function shortEpochBlueprint() {
  const raw = parse(readFileSync('blueprints/environment.yaml', 'utf8'))
  raw.epochs = { lengthSeconds: 10, maxClockSkewSeconds: 5, sealDelaySeconds: 2 }
  Object.assign(raw.deviceClasses[0].quality, {
    minIntervalSeconds: 1,
    stuckWindow: 3,
    expectedReadingsPerEpoch: 5,
  })
  return { raw, blueprint: compileBlueprint(raw, 'test blueprint') }
}

/** Polls `probe` until it returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
