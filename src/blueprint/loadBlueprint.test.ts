import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { parseScaled } from './blueprintSchema.ts'
import { compileBlueprint, loadBlueprint, networkParametersOf } from './loadBlueprint.ts'

const shipped = 'blueprints/environment.yaml'

describe('blueprints', () => {
  it('loads the shipped environment blueprint with exact fixed-point bounds', () => {
    const bp = loadBlueprint(shipped)
    const station = bp.classById.get(1)
    expect(station?.fields.map((f) => f.name)).toEqual(['temperature', 'humidity', 'pm25', 'pressure'])
    expect(station?.fields[0]).toMatchObject({ scale: 2, min: -6000n, max: 6000n })
    expect(station?.fields[3]).toMatchObject({ scale: 1, min: 8500n, max: 11000n })
    expect(station?.quality.spatial.minDeviation).toEqual([200n, 500n, 100n, 30n])
    expect(bp.token.initialEpochEmission).toBe(1000n * 10n ** 18n)
    const params = networkParametersOf(bp)
    expect(params.epochs.epochLength).toBe(30n)
    expect(params.registry.deviceClasses).toEqual([{ id: 1, requiresMaker: false }])
  })

  it('parses decimals exactly, never through floating point', () => {
    expect(parseScaled('-12.5', 2)).toBe(-1250n)
    expect(parseScaled('0.1', 18)).toBe(10n ** 17n)
    expect(parseScaled('123456789012345678901234567890', 0)).toBe(123456789012345678901234567890n)
    expect(() => parseScaled('1.234', 2)).toThrow(/more than 2 decimals/)
    expect(() => parseScaled('1e3', 0)).toThrow(/not a decimal/)
  })

  it('names the offending field in errors', () => {
    const raw = parse(readFileSync(shipped, 'utf8'))
    const bad = structuredClone(raw)
    bad.deviceClasses[0].fields[1].max = 'lots'
    expect(() => compileBlueprint(bad)).toThrow(/deviceClasses\.0\.fields\.1\.max: expected a decimal number/)
    const split = structuredClone(raw)
    split.rewards.validatorShareBps = 500
    expect(() => compileBlueprint(split)).toThrow(
      /rewards: deviceShareBps \+ validatorShareBps must be 10000/,
    )
    const noDeviation = structuredClone(raw)
    noDeviation.deviceClasses[0].quality.spatial.minDeviation = ['1']
    expect(() => compileBlueprint(noDeviation)).toThrow(/minDeviation: needs one value per field \(4\)/)
    const missing = structuredClone(raw)
    delete missing.epochs.lengthSeconds
    expect(() => compileBlueprint(missing)).toThrow(/epochs\.lengthSeconds/)
  })

  it('reports unreadable files and bad YAML with the file name', () => {
    expect(() => loadBlueprint('does/not/exist.yaml')).toThrow(/cannot read blueprint does\/not\/exist.yaml/)
    const dir = mkdtempSync(join(tmpdir(), 'bp-'))
    writeFileSync(join(dir, 'bad.yaml'), 'name: [unclosed')
    expect(() => loadBlueprint(join(dir, 'bad.yaml'))).toThrow(/not valid YAML/)
  })
})
