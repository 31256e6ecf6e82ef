/**
 * The coverage map's route as a stranger meets it: on real (empty) SQLite stores, bad and
 * far-future epochs get typed answers and change nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { offChainDeployment } from '../../../test/helpers/offChainDeployment.ts'
import { type ApiServer, createApiServer } from '../../api/createApiServer.ts'
import { loadBlueprint } from '../../blueprint/loadBlueprint.ts'
import { createIndexerStore, type IndexerStore } from '../../indexer/indexerStore.ts'
import { openIndexerDatabase } from '../../indexer/openIndexerDatabase.ts'
import { createValidatorStore, type ValidatorStore } from '../../validator/validatorStore.ts'

let dir: string
let api: ApiServer
let indexer: IndexerStore
let validator: ValidatorStore
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-coverage-api-'))
  indexer = createIndexerStore(openIndexerDatabase(join(dir, 'indexer.db')))
  validator = createValidatorStore(join(dir, 'validator.db'))
  api = await createApiServer({
    deployment: offChainDeployment(1_800_000_000n, 30n),
    blueprint: loadBlueprint('connectivity'),
    indexer,
    rewards: validator,
    // the loop below asks 200 times within a second: the route's answers, not the rate limit, are tested
    rateLimit: { perIp: 10_000 },
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
  return { status: response.statusCode, json: response.json() as { error?: { code: string } } }
}

describe('GET /v1/coverage', () => {
  it('answers an empty map before anything settled, and lists the route in the OpenAPI document', async () => {
    expect(await get('/v1/coverage')).toEqual({
      status: 200,
      json: { epoch: null, resolution: 8, cells: [] },
    })
    const doc = (await get('/v1/openapi.json')).json as unknown as { paths: Record<string, unknown> }
    expect(Object.keys(doc.paths)).toContain('/v1/coverage')
    expect(Object.keys(doc.paths)).not.toContain('/v1/aggregate')
  })

  it('refuses malformed epochs with INVALID_QUERY and unsettled or far-future ones with EPOCH_UNPROVABLE', async () => {
    for (const epoch of ['soon', '-1', '1e3', '0x10', '9'.repeat(19), ''])
      expect((await get(`/v1/coverage?epoch=${epoch}`)).json.error?.code, epoch).toBe('INVALID_QUERY')
    for (const epoch of ['0', '999999999999999999']) {
      const answer = await get(`/v1/coverage?epoch=${epoch}`)
      expect(answer.status, epoch).toBe(404)
      expect(answer.json.error?.code, epoch).toBe('EPOCH_UNPROVABLE')
    }
    // a loop of them changes nothing: the map is still empty, the stores untouched
    for (let i = 0; i < 200; i++) await get(`/v1/coverage?epoch=${i * 7919}`)
    expect((await get('/v1/coverage')).json).toEqual({ epoch: null, resolution: 8, cells: [] })
    expect(validator.lastJudgedEpoch()).toBeUndefined()
  })
})
