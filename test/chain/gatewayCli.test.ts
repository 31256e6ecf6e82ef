/** `depin gateway list|set|remove` against a real chain: the registry's gateway list from the command line. */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { generatePrivateKey, privateKeyToAddress } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeDeployment } from '../../src/chain/deployment.ts'
import { startTestNetwork, type TestNetwork } from '../helpers/testNetwork.ts'

const run = promisify(execFile)
let net: TestNetwork
let dataDir: string
beforeAll(async () => {
  net = await startTestNetwork()
  dataDir = mkdtempSync(join(tmpdir(), 'depin-gateway-cli-'))
  writeDeployment(join(dataDir, 'deployment.json'), net.deployment)
})
afterAll(async () => {
  await net?.stop()
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
})

const depin = (...args: string[]) =>
  run('npx', [
    'tsx',
    'src/cli/main.ts',
    'gateway',
    ...args,
    '--rpc-url',
    net.anvil.rpcUrl,
    '--data-dir',
    dataDir,
  ])

describe('depin gateway', () => {
  it('lists a gateway, changes its URL, removes it, and refuses bad input', async () => {
    const id = privateKeyToAddress(generatePrivateKey())
    expect((await depin('list')).stdout).toBe('no gateways listed\n')
    expect((await depin('set', '--id', id, '--url', 'http://10.0.0.5:8546')).stdout).toContain('added')
    expect((await depin('set', '--id', id, '--url', 'http://10.0.0.5:8546')).stdout).toContain(
      'already listed',
    )
    expect((await depin('set', '--id', id, '--url', 'https://gw.example')).stdout).toContain('changed')
    expect((await depin('list')).stdout).toBe(`${id} https://gw.example\n`)
    await expect(depin('set', '--id', id, '--url', 'ftp://x')).rejects.toMatchObject({
      stderr: expect.stringContaining('INVALID_URL'),
    })
    await expect(depin('set', '--id', '0x12', '--url', 'http://x')).rejects.toMatchObject({
      stderr: expect.stringContaining('INVALID_ADDRESS'),
    })
    expect((await depin('remove', '--id', id)).stdout).toContain('removed')
    expect((await depin('list')).stdout).toBe('no gateways listed\n')
  })
})
