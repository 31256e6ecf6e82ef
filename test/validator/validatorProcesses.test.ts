/**
 * Validators as processes of their own (`depin validator run`), on real anvil, a real gateway
 * and a simulated fleet, exchanging signed reports over HTTP: epochs settle with their
 * signatures, and still settle when one of the three is killed (quorum 2 of 3).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Account, type Hex, keccak256, toHex } from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { networkParametersOf } from '../../src/blueprint/loadBlueprint.ts'
import { type ChainClients, createChainClients } from '../../src/chain/createChainClients.ts'
import { deployContracts } from '../../src/chain/deployContracts.ts'
import { type Deployment, writeDeployment } from '../../src/chain/deployment.ts'
import { getContracts } from '../../src/chain/getContracts.ts'
import { joinAsValidator } from '../../src/chain/joinAsValidator.ts'
import { loadOrCreateKey } from '../../src/chain/loadOrCreateKey.ts'
import { hashEpochReport, signEpochReport } from '../../src/chain/signEpochReport.ts'
import { anvilAccounts, type StartAnvilReturnType, startAnvil } from '../../src/chain/startAnvil.ts'
import { createFleet } from '../../src/device/simulator/createFleet.ts'
import { registerFleet } from '../../src/device/simulator/registerFleet.ts'
import { runFleet } from '../../src/device/simulator/runFleet.ts'
import { createGateway, type Gateway } from '../../src/gateway/createGateway.ts'
import { createIndexer, type Indexer } from '../../src/indexer/createIndexer.ts'
import { toSignedEpochReportJson } from '../../src/validator/createHttpReportExchange.ts'
import { shortEpochBlueprint, waitFor } from '../helpers/testBlueprint.ts'

const { raw, blueprint } = shortEpochBlueprint()

/** A port that was free a moment ago (the OS picks it), for configs written before the process starts. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

let dir: string
let admin: ChainClients
let deployment: Deployment
let ports: number[]
let anvil: StartAnvilReturnType
let gateway: Gateway
let indexer: Indexer
let fleetRun: { stop(): Promise<void> }
const processes: { child: ChildProcess; address: string; output: string[] }[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depin-validators-'))
  anvil = await startAnvil({ blockTime: 1 })
  admin = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[0] })
  deployment = await deployContracts({ clients: admin, parameters: networkParametersOf(blueprint) })
  writeDeployment(join(dir, 'deployment.json'), deployment)
  writeFileSync(join(dir, 'blueprint.json'), JSON.stringify(raw))

  indexer = createIndexer({
    publicClient: admin.publicClient,
    deployment,
    dbPath: join(dir, 'gateway-indexer.db'),
  })
  await indexer.start()
  gateway = await createGateway({
    blueprint,
    deployment,
    devices: indexer.store,
    dbPath: join(dir, 'gateway.db'),
  })
  await gateway.start()

  ports = [await freePort(), await freePort(), await freePort()]
  for (const [i, port] of ports.entries()) {
    const keyFile = join(dir, `v${i}`, 'key')
    mkdirSync(join(dir, `v${i}`), { recursive: true })
    const clients = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: loadOrCreateKey(keyFile) })
    await joinAsValidator({
      sponsor: admin,
      validator: clients,
      deployment,
      bond: blueprint.validators.minBond,
    })
    const config = join(dir, `v${i}`, 'config.json')
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: '.',
        keyFile: 'key',
        rpcUrl: anvil.rpcUrl,
        blueprint: '../blueprint.json',
        deployment: '../deployment.json',
        gateways: [gateway.url],
        peers: ports.filter((p) => p !== port).map((p) => `http://127.0.0.1:${p}`),
        port,
        leaderTimeoutMs: 3_000,
      }),
    )
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'validator', 'run', '--config', config],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const output: string[] = []
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
    processes.push({ child, address: (clients.account as Account).address, output })
  }
  await waitFor('every validator process to start', () =>
    processes.every((p) => p.output.join('').includes('validator_started')) ? true : undefined,
  )

  const fleet = createFleet({ size: 8, blueprint, seed: 3 })
  const owners = [await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: anvilAccounts[1] })]
  await registerFleet({ fleet, ownerClients: owners, deployment })
  await indexer.syncOnce()
  fleetRun = runFleet({
    fleet,
    gatewayUrl: gateway.url,
    chainId: deployment.chainId,
    deviceRegistry: deployment.contracts.deviceRegistry,
    intervalSeconds: 2,
  })
}, 120_000)

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  await fleetRun?.stop()
  await gateway?.stop()
  await indexer?.stop()
  await anvil?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const addresses = () => new Set(processes.map((p) => p.address.toLowerCase()))

describe('validators as separate processes', () => {
  it('settle epochs with a quorum of signatures exchanged over HTTP', async () => {
    const settled = await waitFor('an epoch with readings to settle', () =>
      indexer.store.epochs().find((e) => e.accepted > 0),
    )
    expect(settled.signers.length).toBeGreaterThanOrEqual(2)
    for (const signer of settled.signers) expect(addresses().has(signer.toLowerCase())).toBe(true)
    expect(addresses().has(settled.submitter.toLowerCase())).toBe(true)
  })

  it('slash a validator that signs two different reports for one epoch, proven by an honest validator', async () => {
    const cheat = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: generatePrivateKey() })
    const cheatAddress = (cheat.account as Account).address
    await joinAsValidator({
      sponsor: admin,
      validator: cheat,
      deployment,
      bond: blueprint.validators.minBond,
    })
    const epoch = (indexer.store.epochs(1)[0]?.epoch ?? 0n) + 1n
    const sign = (rewardsRoot: Hex) => {
      const report = {
        epoch,
        readingsRoot: keccak256(toHex('readings')),
        rewardsRoot,
        total: 1n,
        accepted: 1,
      }
      return signEpochReport({
        account: cheat.account as Account,
        chainId: deployment.chainId,
        epochManager: deployment.contracts.epochManager,
        report,
      }).then((signed) => ({
        epoch,
        report,
        digest: hashEpochReport(deployment.chainId, deployment.contracts.epochManager, report),
        signer: signed.signer,
        signature: signed.signature,
      }))
    }
    // the cheat tells one honest validator two different stories
    for (const rewardsRoot of [keccak256(toHex('story one')), keccak256(toHex('story two'))]) {
      const response = await fetch(`http://127.0.0.1:${ports[1]}/v1/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(toSignedEpochReportJson(await sign(rewardsRoot))),
      })
      expect(response.status).toBe(200)
    }
    const proof = await waitFor('the equivocation to be proven on-chain', () =>
      indexer.store.equivocations().find((e) => e.validator.toLowerCase() === cheatAddress.toLowerCase()),
    )
    expect(proof.epoch).toBe(epoch)
    expect(proof.slashed).toBe(blueprint.validators.minBond)
    expect(addresses().has(proof.prover.toLowerCase())).toBe(true)
    const contracts = getContracts(admin, deployment)
    expect(await contracts.validatorSet.read.isActive([cheatAddress])).toBe(false)
  })

  it('still settle when one of three is killed, and the others stop cleanly', async () => {
    const victim = processes[0] as (typeof processes)[number]
    victim.child.kill('SIGKILL')
    const killedAt = BigInt(Math.floor(Date.now() / 1000))
    const epochLength = BigInt(blueprint.epochs.lengthSeconds)
    const after = await waitFor(
      'an epoch that started after the kill to settle',
      () => indexer.store.epochs().find((e) => e.accepted > 0 && e.timestamp > killedAt + epochLength),
      90_000,
    )
    expect(after.signers.map((s) => s.toLowerCase())).not.toContain(victim.address.toLowerCase())
    expect(after.signers.length).toBe(2)

    for (const p of processes.slice(1)) {
      const exited = new Promise<number | null>((resolve) => p.child.once('exit', resolve))
      p.child.kill('SIGTERM')
      expect(await exited).toBe(0)
      expect(p.output.join('')).toContain('validator_stopped')
    }
  })
})
