/**
 * `depin validator protection export|import` from the command line: a validator's signing record
 * taken to a new machine refuses there what it would have refused on the old one.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAddress } from 'viem/accounts'
import { afterAll, describe, expect, it } from 'vitest'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { openSlashingProtection } from '../../src/validator/slashingProtection.ts'
import { offChainDeployment } from '../helpers/offChainDeployment.ts'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'depin-protection-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const depin = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: process.cwd() })

describe('depin validator protection', () => {
  it('exports what a validator signed and imports it on a new machine', async () => {
    const deployment = offChainDeployment(1_700_000_000n, 10n)
    writeDeployment(join(dir, 'deployment.json'), deployment)
    const key = generatePrivateKey()
    const validator = privateKeyToAddress(key)
    const network = {
      chainId: deployment.chainId,
      epochManager: deployment.contracts.epochManager,
      validator,
    }
    const machine = (name: string) => {
      const config = join(dir, `${name}.json`)
      writeFileSync(join(dir, `${name}.key`), key, { mode: 0o600 })
      writeFileSync(
        config,
        JSON.stringify({
          dataDir: name,
          keyFile: `${name}.key`,
          rpcUrl: 'http://127.0.0.1:1',
          blueprint: '../../blueprints/environment.yaml',
          deployment: 'deployment.json',
          port: 0,
        }),
      )
      return { config, db: join(dir, name, 'validator.db') }
    }
    const old = machine('old')
    const fresh = machine('new')
    mkdirSync(join(dir, 'old'))
    mkdirSync(join(dir, 'new'))
    const digest = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex
    const record = openSlashingProtection(old.db, network)
    for (const epoch of [5n, 6n])
      await record.signOnce('report', epoch, digest(Number(epoch)), '{}', async () => `0x${'1'.repeat(130)}`)
    record.close()

    const file = join(dir, 'interchange.json')
    const exported = await depin('validator', 'protection', 'export', '--config', old.config, '--out', file)
    expect(exported.stderr).toContain(`exported 2 signed reports and 0 batch sets of ${validator}`)
    expect(JSON.parse(readFileSync(file, 'utf8')).data[0].signedReports).toEqual([
      { epoch: '5', digest: digest(5) },
      { epoch: '6', digest: digest(6) },
    ])
    const imported = await depin(
      'validator',
      'protection',
      'import',
      '--config',
      fresh.config,
      '--file',
      file,
    )
    expect(imported.stdout).toContain('imported 2 records')

    const moved = openSlashingProtection(fresh.db, network)
    const sign = async () => `0x${'2'.repeat(130)}` as Hex
    expect((await moved.signOnce('report', 6n, digest(66), '{}', sign)).type).toBe('refused')
    expect((await moved.signOnce('report', 4n, digest(4), '{}', sign)).type).toBe('refused')
    expect((await moved.signOnce('report', 7n, digest(7), '{}', sign)).type).toBe('signed')
    moved.close()

    // a file of another network is refused with its code, and changes nothing
    const other = JSON.parse(readFileSync(file, 'utf8'))
    other.metadata.chainId = 1
    writeFileSync(join(dir, 'other.json'), JSON.stringify(other))
    const refused = await depin(
      'validator',
      'protection',
      'import',
      '--config',
      fresh.config,
      '--file',
      join(dir, 'other.json'),
    ).catch((error: { code: number; stderr: string }) => error)
    expect(refused).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('SLASHING_INTERCHANGE_OTHER_NETWORK'),
    })
  }, 60_000)
})
