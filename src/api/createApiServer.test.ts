import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { offChainDeployment } from '../../test/helpers/offChainDeployment.ts'
import { loadBlueprint } from '../blueprint/loadBlueprint.ts'
import { createIndexerStore, type IndexerStore } from '../indexer/indexerStore.ts'
import { openIndexerDatabase } from '../indexer/openIndexerDatabase.ts'
import { USE_CASES } from '../usecases/registry.ts'
import { createValidatorStore, type ValidatorStore } from '../validator/validatorStore.ts'
import { type ApiServer, createApiServer } from './createApiServer.ts'
import { apiRoutes } from './openApiDocument.ts'

// real (empty) SQLite stores: the routes' parameters and documents, not their data, are tested here
let dir: string
let api: ApiServer
let indexer: IndexerStore
let validator: ValidatorStore
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-api-'))
  indexer = createIndexerStore(openIndexerDatabase(join(dir, 'indexer.db')))
  validator = createValidatorStore(join(dir, 'validator.db'))
  api = await createApiServer({
    deployment: offChainDeployment(1_800_000_000n, 30n),
    blueprint: loadBlueprint('blueprints/environment.yaml'),
    indexer,
    rewards: validator,
  })
  await api.server.ready()
})
afterAll(async () => {
  await api.stop()
  indexer.close()
  validator.close()
  rmSync(dir, { recursive: true, force: true })
})

const get = async (url: string) => {
  const response = await api.server.inject({ method: 'GET', url })
  // biome-ignore lint/suspicious/noExplicitAny: the tests read into arbitrary JSON answers
  return { status: response.statusCode, json: response.json() as Record<string, any> }
}

describe('the API', () => {
  it('documents exactly the routes it serves, in an OpenAPI 3.1 document', async () => {
    const served = api.routes.map((path) => path.replace(/:(\w+)/g, '{$1}')).sort()
    expect(served).toEqual(
      apiRoutes(USE_CASES.environment as (typeof USE_CASES)[string])
        .map((r) => r.path)
        .sort(),
    )
    const { status, json } = await get('/v1/openapi.json')
    expect(status).toBe(200)
    expect(json.openapi).toBe('3.1.0')
    expect(Object.keys(json.paths).sort()).toEqual(served)
    const aggregate = json.paths['/v1/aggregate'].get.parameters as { name: string; required: boolean }[]
    expect(aggregate.find((p) => p.name === 'field')).toMatchObject({ required: true })
    expect(aggregate.find((p) => p.name === 'ring')).toMatchObject({
      required: false,
      schema: { default: 1 },
    })
    expect(json.paths['/v1/rewards/{account}'].get.parameters[0]).toMatchObject({
      in: 'path',
      required: true,
    })
  })

  it('refuses bad query strings with INVALID_QUERY naming the parameter', async () => {
    for (const [url, parameter] of [
      ['/v1/epochs?limit=abc', 'limit'],
      ['/v1/epochs?limit=100000', 'limit'],
      ['/v1/devices?owner=nobody', 'owner'],
      ['/v1/devices?offset=-1', 'offset'],
      ['/v1/readings?from=-5', 'from'],
      ['/v1/readings?device=0x12', 'device'],
      ['/v1/aggregate?field=temperature', 'cell'],
      ['/v1/aggregate?field=temperature&lat=95&lng=0', 'lat'],
      ['/v1/stream?since=soon', 'since'],
      ['/v1/stream?lat=52.52', 'lng'],
      ['/v1/stream?lng=13.4&ring=1', 'lng'],
      [`/v1/devices/0x${'12'.repeat(20)}/receipts?before=99999999999999999999`, 'before'],
      [`/v1/devices/0x${'12'.repeat(20)}/receipts?before=`, 'before'],
      [`/v1/devices/0x${'12'.repeat(20)}/receipts?before=-1`, 'before'],
      [`/v1/devices/0x${'12'.repeat(20)}/receipts?limit=21`, 'limit'],
    ] as const) {
      const { status, json } = await get(url)
      expect(status, url).toBe(400)
      expect(json.error.code, url).toBe('INVALID_QUERY')
      expect(json.error.message, url).toMatch(new RegExp(`^${parameter}: `))
    }
    expect(await get('/v1/devices/0x12/receipts')).toMatchObject({
      status: 400,
      json: { error: { code: 'INVALID_ADDRESS' } },
    })
    const unknownField = await get('/v1/aggregate?field=windSpeed&lat=52.5&lng=13.4')
    expect(unknownField).toMatchObject({ status: 400, json: { error: { code: 'UNKNOWN_FIELD' } } })
  })

  it('answers empty lists, not errors, before anything settled', async () => {
    expect(await get('/v1/epochs')).toEqual({ status: 200, json: { epochs: [] } })
    expect((await get('/v1/readings')).json).toMatchObject({ readings: [], unverifiable: [] })
    expect((await get(`/v1/devices/0x${'12'.repeat(20)}/receipts?before=5`)).json).toMatchObject({
      registered: false,
      receipts: [],
      unverifiable: [],
      unitNames: ['qualityBps', 'uptimeBps'],
    })
    expect((await get('/v1/aggregate?field=temperature&lat=52.52&lng=13.405')).json).toMatchObject({
      count: 0,
      readings: [],
      area: { ring: 1, cells: 7, devices: 0 },
    })
  })
})

describe("the API's metrics", () => {
  it("sit behind the address's rate limit: a stranger flooding /metrics gets 429s", async () => {
    const limited = await createApiServer({
      deployment: offChainDeployment(1_800_000_000n, 30n),
      blueprint: loadBlueprint('blueprints/environment.yaml'),
      indexer,
      rewards: validator,
      rateLimit: { perIp: 5 },
    })
    try {
      const statuses: number[] = []
      for (let i = 0; i < 12; i++)
        statuses.push((await limited.server.inject({ method: 'GET', url: '/metrics' })).statusCode)
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200])
      expect(statuses.slice(5)).toEqual(Array(7).fill(429))
    } finally {
      await limited.stop()
    }
  })
})
