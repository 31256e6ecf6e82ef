import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { connectChain, readOperatorKey } from '../../src/chain/connectChain.ts'
import { readDeployment } from '../../src/chain/deployment.ts'
import { getReadOnlyContracts } from '../../src/chain/getContracts.ts'

const run = promisify(execFile)
const dirs: string[] = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'depin-chain-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const depin = (...args: string[]) => run('npx', ['tsx', 'src/cli/main.ts', ...args], { cwd: process.cwd() })

describe('depin deploy on the embedded chain', () => {
  it('deploys, writes the deployment file, and a restart keeps the network', async () => {
    const dataDir = tempDir()
    const first = await depin('deploy', '--data-dir', dataDir)
    expect(first.stdout).toContain('deployed epochManager')
    const deployment = readDeployment(join(dataDir, 'deployment.json'))

    const second = await depin('deploy', '--data-dir', dataDir)
    expect(second.stdout).toContain('using the deployment')
    expect(readDeployment(join(dataDir, 'deployment.json'))).toEqual(deployment)

    // the chain restarted from its saved state still holds the contracts and their state
    const chain = await connectChain({ dataDir })
    try {
      const contracts = getReadOnlyContracts(chain, deployment)
      expect(await contracts.depinToken.read.minter()).toBe(deployment.contracts.rewardDistributor)
      expect(await contracts.deviceRegistry.read.getDeviceClass([1])).toEqual({
        exists: true,
        requiresMaker: false,
      })
    } finally {
      await chain.close()
    }
  })

  it('refuses a recorded deployment that the chain does not have, unless forced', async () => {
    const dataDir = tempDir()
    await depin('deploy', '--data-dir', dataDir)
    rmSync(join(dataDir, 'chain'), { recursive: true })
    await expect(depin('deploy', '--data-dir', dataDir)).rejects.toMatchObject({
      stderr: expect.stringContaining('DEPLOYMENT_NOT_ON_CHAIN'),
    })
    const forced = await depin('deploy', '--data-dir', dataDir, '--force')
    expect(forced.stdout).toContain('deployed rewardDistributor')
  })

  it('refuses a network deployed from other contract code, unless forced', async () => {
    const dataDir = tempDir()
    await depin('deploy', '--data-dir', dataDir)
    const path = join(dataDir, 'deployment.json')
    const recorded = JSON.parse(readFileSync(path, 'utf8'))
    writeFileSync(path, JSON.stringify({ ...recorded, codeHash: 'ab'.repeat(32) }))
    await expect(depin('deploy', '--data-dir', dataDir)).rejects.toMatchObject({
      stderr: expect.stringContaining('DEPLOYMENT_OUTDATED'),
    })
    expect((await depin('deploy', '--data-dir', dataDir, '--force')).stdout).toContain(
      'deployed epochManager',
    )
  })

  it('reports an unreachable RPC and a bad deployment file clearly', async () => {
    await expect(
      depin('deploy', '--rpc-url', 'http://127.0.0.1:1', '--data-dir', tempDir()),
    ).rejects.toMatchObject({
      stderr: expect.stringContaining('RPC_UNREACHABLE'),
    })
    const dataDir = tempDir()
    writeFileSync(join(dataDir, 'deployment.json'), '{"version":1,"chainId":"x"}')
    await expect(depin('deploy', '--data-dir', dataDir)).rejects.toMatchObject({
      stderr: expect.stringMatching(/DEPLOYMENT_INVALID.*chainId/),
    })
  })
})

describe('operator keys', () => {
  it('refuses a key file that others can read, and a malformed key', () => {
    const dir = tempDir()
    const file = join(dir, 'key')
    writeFileSync(file, `0x${'11'.repeat(32)}\n`)
    chmodSync(file, 0o644)
    expect(() => readOperatorKey(file)).toThrow(/readable by others/)
    chmodSync(file, 0o600)
    expect(readOperatorKey(file)).toBe(`0x${'11'.repeat(32)}`)
    writeFileSync(file, 'not a key')
    expect(() => readOperatorKey(file)).toThrow(/not 0x \+ 64 hex/)
    expect(readFileSync(file, 'utf8')).toBe('not a key')
  })
})
