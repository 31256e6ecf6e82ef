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
    expect(station?.quality?.spatial.minDeviation).toEqual([200n, 500n, 100n, 30n])
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

  it('hashes its rules: the same for the same rules however written, another for any rule changed', () => {
    const raw = parse(readFileSync('blueprints/environment.yaml', 'utf8'))
    const hash = compileBlueprint(raw).rulesHash
    expect(hash).toMatch(/^0x[0-9a-f]{64}$/)
    // key order and the free-text description do not matter; the use case's default is written out
    const reordered = Object.fromEntries(Object.entries(raw).reverse())
    expect(compileBlueprint({ ...reordered, description: 'another text' }).rulesHash).toBe(hash)
    expect(compileBlueprint({ ...raw, useCase: 'environment' }).rulesHash).toBe(hash)
    // a rule, an economic parameter, the network's name: each makes other rules
    const stuck = structuredClone(raw)
    stuck.deviceClasses[0].quality.stuckWindow += 1
    const emission = structuredClone(raw)
    emission.token.initialEpochEmission = String(BigInt(emission.token.initialEpochEmission) + 1n)
    const hashes = [stuck, emission, { ...raw, name: 'other' }].map((b) => compileBlueprint(b).rulesHash)
    expect(new Set([hash, ...hashes]).size).toBe(4)
    expect(networkParametersOf(compileBlueprint(raw)).rulesHash).toBe(hash)
  })

  it('refuses a use case this build does not have', () => {
    const raw = parse(readFileSync('blueprints/environment.yaml', 'utf8'))
    expect(() => compileBlueprint({ ...raw, useCase: 'teleportation' }, 'x.yaml')).toThrow(
      expect.objectContaining({
        code: 'BLUEPRINT_INVALID',
        message: expect.stringContaining('teleportation'),
      }),
    )
  })

  it('reports unreadable files and bad YAML with the file name', () => {
    expect(() => loadBlueprint('does/not/exist.yaml')).toThrow(/cannot read blueprint does\/not\/exist.yaml/)
    const dir = mkdtempSync(join(tmpdir(), 'bp-'))
    writeFileSync(join(dir, 'bad.yaml'), 'name: [unclosed')
    expect(() => loadBlueprint(join(dir, 'bad.yaml'))).toThrow(/not valid YAML/)
  })
})
