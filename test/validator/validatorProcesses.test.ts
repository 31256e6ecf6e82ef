/**
 * Validators as processes of their own (`depin validator run`), on real anvil, a real gateway
 * and a simulated fleet, exchanging signed reports over HTTP: epochs settle with their
 * signatures, an equivocating validator is slashed, and epochs still settle when one of three is
 * killed (quorum 2 of 3).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { type Account, type Hex, keccak256, toHex } from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { createChainClients } from '../../src/chain/createChainClients.ts'
import { runningEpoch } from '../../src/chain/deployment.ts'
import { getContracts } from '../../src/chain/getContracts.ts'
import { joinAsValidator } from '../../src/chain/joinAsValidator.ts'
import { hashEpochReport, signEpochReport } from '../../src/chain/signEpochReport.ts'
import { toSignedEpochReportJson } from '../../src/validator/createHttpReportExchange.ts'
import { type ProcessNetwork, startProcessNetwork } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 3 })
}, 120_000)
afterAll(async () => net?.stop())

describe('validators as separate processes', () => {
  it('settle epochs with a quorum of signatures exchanged over HTTP', async () => {
    const settled = await waitFor('an epoch with readings to settle', () =>
      net.indexer.store.epochs().find((e) => e.accepted > 0),
    )
    expect(settled.signers.length).toBeGreaterThanOrEqual(2)
    for (const signer of settled.signers) expect(net.addresses().has(signer.toLowerCase())).toBe(true)
    expect(net.addresses().has(settled.submitter.toLowerCase())).toBe(true)
    // they found each other through the endpoints they advertised on-chain (no static peers)
    const endpoints = net.indexer.store
      .validatorEndpoints()
      .map((e) => [e.validator.toLowerCase(), e.url] as const)
    expect(new Map(endpoints)).toEqual(
      new Map(net.processes.map((p, i) => [p.address.toLowerCase(), `http://127.0.0.1:${net.ports[i]}`])),
    )
  })

  it('slash a validator that signs two different reports for one epoch, proven by an honest validator', async () => {
    const { anvil, admin, deployment, blueprint, indexer } = net
    const cheat = await createChainClients({ rpcUrl: anvil.rpcUrl, privateKey: generatePrivateKey() })
    const cheatAddress = (cheat.account as Account).address
    await joinAsValidator({
      sponsor: admin,
      validator: cheat,
      deployment,
      bond: blueprint.validators.minBond,
    })
    // an epoch the cheat is a validator of: one that ends after it joined (an exchange keeps an
    // epoch's items only from the validators active at its end)
    const epoch = runningEpoch(BigInt(Math.floor(Date.now() / 1000)), deployment)
    const sign = async (rewardsRoot: Hex) => {
      const report = {
        epoch,
        rulesHash: blueprint.rulesHash,
        readingsRoot: keccak256(toHex('readings')),
        rewardsRoot,
        receiptsRoot: keccak256(toHex('receipts')),
        total: 1n,
        accepted: 1,
      }
      const { epochManager } = deployment.contracts
      const signed = await signEpochReport({
        account: cheat.account as Account,
        chainId: deployment.chainId,
        epochManager,
        report,
      })
      return { epoch, report, digest: hashEpochReport(deployment.chainId, epochManager, report), ...signed }
    }
    // the cheat tells one honest validator two different stories (refused, 403, until that
    // validator's indexer has seen the cheat join: it keeps only validators' reports)
    for (const rewardsRoot of [keccak256(toHex('story one')), keccak256(toHex('story two'))]) {
      const body = JSON.stringify(toSignedEpochReportJson(await sign(rewardsRoot)))
      await waitFor('the honest validator to keep the report', async () => {
        const response = await fetch(`http://127.0.0.1:${net.ports[1]}/v1/reports`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        })
        const answer = (await response.json()) as { error?: { code: string } }
        if (response.status === 200) return true
        expect(answer.error?.code).toBe('SIGNER_NOT_VALIDATOR')
        return undefined
      })
    }
    const proof = await waitFor('the equivocation to be proven on-chain', () =>
      indexer.store.equivocations().find((e) => e.validator.toLowerCase() === cheatAddress.toLowerCase()),
    )
    expect(proof.epoch).toBe(epoch)
    expect(proof.slashed).toBe(blueprint.validators.minBond)
    expect(net.addresses().has(proof.prover.toLowerCase())).toBe(true)
    expect(await getContracts(admin, deployment).validatorSet.read.isActive([cheatAddress])).toBe(false)
  })

  it('refuse to start a validator whose blueprint makes other rules than the network pinned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'depin-other-rules-'))
    try {
      const raw = JSON.parse(
        readFileSync(join(dirname(dirname(net.processes[1]?.config as string)), 'blueprint.json'), 'utf8'),
      )
      raw.deviceClasses[0].quality.stuckWindow += 1 // one rule changed
      writeFileSync(join(dir, 'blueprint.json'), JSON.stringify(raw))
      const other = compileBlueprint(raw).rulesHash
      const config = JSON.parse(readFileSync(net.processes[1]?.config as string, 'utf8'))
      writeFileSync(join(dir, 'key'), `${generatePrivateKey()}\n`, { mode: 0o600 })
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({
          ...config,
          dataDir: '.',
          keyFile: 'key',
          blueprint: 'blueprint.json',
          deployment: join(dirname(dirname(net.processes[1]?.config as string)), 'deployment.json'),
          port: 0,
        }),
      )
      const run = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'validator', 'run', '--config', join(dir, 'config.json')],
        { encoding: 'utf8', timeout: 60_000 },
      )
      expect(run.status).not.toBe(0)
      const output = run.stdout + run.stderr
      expect(output).toContain('RULES_MISMATCH')
      expect(output).toContain(other)
      expect(output).toContain(net.blueprint.rulesHash)
      // it stopped before it started anything: no indexer, no store
      expect(existsSync(join(dir, 'validator.db'))).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('still settle when one of three is killed, and the others stop cleanly', async () => {
    const victim = net.processes[0] as (typeof net.processes)[number]
    victim.child.kill('SIGKILL')
    const killedAt = BigInt(Math.floor(Date.now() / 1000))
    const epochLength = BigInt(net.blueprint.epochs.lengthSeconds)
    const after = await waitFor(
      'an epoch that ended after the kill to settle',
      // one that ended after the kill (an earlier one may still settle with the victim's signature)
      () =>
        net.indexer.store
          .epochs()
          .find(
            (e) => e.accepted > 0 && net.deployment.genesisTime + (e.epoch + 1n) * epochLength > killedAt,
          ),
      90_000,
    )
    expect(after.signers.map((s) => s.toLowerCase())).not.toContain(victim.address.toLowerCase())
    expect(after.signers.length).toBe(2)

    for (const p of net.processes.slice(1)) {
      const exited = new Promise<number | null>((resolve) => p.child.once('exit', resolve))
      p.child.kill('SIGTERM')
      expect(await exited).toBe(0)
      expect(p.output.join('')).toContain('validator_stopped')
    }
  })
})
