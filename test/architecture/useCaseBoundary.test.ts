/**
 * The shared pipeline knows a use case only through its module interface: no file outside
 * `src/usecases/<id>/` imports from inside it, except the registry (`src/usecases/registry.ts`,
 * the one line a new use case adds), and no use case imports another's internals. Adding a use
 * case touches its own folder plus that line.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')
const REGISTRY = 'src/usecases/registry.ts'

/** Every module specifier a TypeScript file imports or re-exports, static or dynamic. */
function importsOf(source: string): string[] {
  const specifiers: string[] = []
  const patterns = [
    /^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  for (const pattern of patterns)
    for (const match of source.matchAll(pattern)) specifiers.push(match[1] as string)
  return specifiers
}

/** The use case a repository path belongs to, if it lies in a use case's folder. */
function useCaseFolder(path: string): string | undefined {
  return /^src\/usecases\/([^/]+)\//.exec(path)?.[1]
}

/** The imports that cross a use case's boundary: `[importer, imported]` pairs, repository-relative. */
function boundaryViolations(graph: ReadonlyMap<string, readonly string[]>): [string, string][] {
  const violations: [string, string][] = []
  for (const [file, imported] of graph) {
    const own = useCaseFolder(file)
    for (const target of imported) {
      const theirs = useCaseFolder(target)
      if (theirs === undefined || theirs === own || file === REGISTRY) continue
      violations.push([file, target])
    }
  }
  return violations
}

/** src/**\/*.ts (tests included: a shared test must not reach into a use case either), with their relative imports resolved. */
function sourceGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `src/${f.split('\\').join('/')}`)
  for (const file of files) {
    const imported = importsOf(readFileSync(join(ROOT, file), 'utf8'))
      .filter((s) => s.startsWith('.'))
      .map((s) =>
        relative(ROOT, normalize(join(ROOT, dirname(file), s)))
          .split('\\')
          .join('/'),
      )
    graph.set(file, imported)
  }
  return graph
}

describe('the use-case boundary', () => {
  it('finds every kind of import, and flags one that crosses a boundary', () => {
    expect(
      importsOf(`import { a } from './a.ts'
import type { B } from "../b.ts"
export { c } from './c.ts'
import './side-effect.ts'
const d = await import('./d.ts')
import {
  e,
} from './e.ts'`),
    ).toEqual(['./a.ts', '../b.ts', './c.ts', './e.ts', './side-effect.ts', './d.ts'])
    const graph = new Map([
      ['src/validator/judge/judgeEpoch.ts', ['src/usecases/useCase.ts', 'src/usecases/registry.ts']],
      [REGISTRY, ['src/usecases/environment/index.ts']],
      [
        'src/usecases/environment/rules.ts',
        ['src/usecases/useCase.ts', 'src/validator/judge/lowerMedian.ts'],
      ],
      ['src/api/createApiServer.ts', ['src/usecases/environment/rules.ts']],
      ['src/usecases/connectivity/rules.ts', ['src/usecases/environment/computeSpatialBounds.ts']],
    ])
    expect(boundaryViolations(graph)).toEqual([
      ['src/api/createApiServer.ts', 'src/usecases/environment/rules.ts'],
      ['src/usecases/connectivity/rules.ts', 'src/usecases/environment/computeSpatialBounds.ts'],
    ])
  })

  it('holds for the source tree: the pipeline reaches use cases only through the interface and the registry', () => {
    const graph = sourceGraph()
    // not vacuous: the registry does import the environment, and the judge the interface
    expect(graph.get(REGISTRY)).toContain('src/usecases/environment/index.ts')
    expect(graph.get('src/validator/judge/judgeCheckedReadings.ts')).toContain('src/usecases/useCase.ts')
    expect(graph.size).toBeGreaterThan(100)
    expect(boundaryViolations(graph)).toEqual([])
  })
})

describe('every registered use case', () => {
  it('declares record kinds that can be EIP-712 types, with distinct names, and its reasons once', async () => {
    const { USE_CASES } = await import('../../src/usecases/registry.ts')
    const { recordKindProblem } = await import('../../src/readings/recordKinds.ts')
    const { rejectReasonsOf } = await import('../../src/validator/judge/judgement.ts')
    for (const useCase of Object.values(USE_CASES)) {
      expect(useCase.recordKinds.length, useCase.id).toBeGreaterThan(0)
      for (const kind of useCase.recordKinds)
        expect(recordKindProblem(kind), `${useCase.id} ${kind.name}`).toBeUndefined()
      expect(new Set(useCase.recordKinds.map((k) => k.name)).size, useCase.id).toBe(
        useCase.recordKinds.length,
      )
      const reasons = rejectReasonsOf(useCase)
      expect(new Set(reasons).size, useCase.id).toBe(reasons.length)
      expect(new Set(useCase.unitNames).size, useCase.id).toBe(useCase.unitNames.length)
    }
  })
})
