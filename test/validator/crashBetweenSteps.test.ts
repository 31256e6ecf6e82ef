/**
 * Slashing protection on real processes: one of three validators is SIGKILLed at every step
 * between judging an epoch and publishing its report (a fault injection point each, see
 * ValidatorStep), restarted, again and again (CRASH_CYCLES, default 50). It must never sign two
 * digests for one epoch — its peers, who keep every report they get and prove any equivocation
 * on-chain, hold at most one digest of it per epoch — and it is never slashed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getContracts } from '../../src/chain/getContracts.ts'
import type { ValidatorStep } from '../../src/validator/createValidator.ts'
import { type ProcessNetwork, startProcessNetwork, type ValidatorProcess } from '../helpers/processNetwork.ts'
import { waitFor } from '../helpers/testBlueprint.ts'

const CYCLES = Number(process.env.CRASH_CYCLES ?? 50)
const STEPS: ValidatorStep[] = [
  'batchSetRecorded',
  'batchSetSigned',
  'judged',
  'recorded',
  'signed',
  'saved',
  'published',
]

let net: ProcessNetwork
beforeAll(async () => {
  net = await startProcessNetwork({ validators: 3 })
}, 120_000)
afterAll(async () => net?.stop())

const exited = (p: ValidatorProcess, timeoutMs: number) =>
  new Promise<boolean>((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve(true)
    const timer = setTimeout(() => resolve(false), timeoutMs)
    p.child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })

describe('a validator killed between judging and publishing', () => {
  it(`never signs two digests for one epoch and is never slashed (${CYCLES} SIGKILLs)`, async () => {
    await waitFor('a first settled epoch', () => net.indexer.store.epochs().find((e) => e.accepted > 0))
    const victim = 2
    const address = (net.processes[victim] as ValidatorProcess).address
    const killedAt = new Map<ValidatorStep, number>()
    let cycles = 0
    let unreached = 0
    // the running process is replaced by one that kills itself at the chosen step
    ;(net.processes[victim] as ValidatorProcess).child.kill('SIGKILL')
    await exited(net.processes[victim] as ValidatorProcess, 10_000)
    for (let k = 0; cycles < CYCLES; k++) {
      const step = STEPS[k % STEPS.length] as ValidatorStep
      await net.restart(victim, ['--crash-at', step])
      const p = net.processes[victim] as ValidatorProcess
      // every step comes at least once an epoch (10 s); a batch set already signed skips its steps
      if (await exited(p, 25_000)) {
        expect(p.output.join(''), `validator killed itself at ${step}`).toContain('"crashing"')
        killedAt.set(step, (killedAt.get(step) ?? 0) + 1)
        cycles++
      } else {
        unreached++
        p.child.kill('SIGKILL')
        await exited(p, 10_000)
      }
      expect(unreached, 'restarts whose crash step never came').toBeLessThan(CYCLES)
    }
    console.log(`killed at: ${[...killedAt].map(([s, n]) => `${s} ${n}`).join(', ')}; unreached ${unreached}`)
    for (const step of STEPS) expect(killedAt.get(step), `kills at ${step}`).toBeGreaterThan(0)

    // back for good: it signs again, and an epoch settles with its signature
    await net.restart(victim, [])
    const resumedAt = BigInt(Math.floor(Date.now() / 1000))
    await waitFor(
      'an epoch signed by the restarted validator to settle',
      () =>
        net.indexer.store
          .epochs()
          .find(
            (e) =>
              e.timestamp > resumedAt && e.signers.some((s) => s.toLowerCase() === address.toLowerCase()),
          ),
      90_000,
    )

    // what the honest peers hold of it: one digest per epoch at most (they keep every report)
    const last = net.indexer.store.epochs(1)[0]?.epoch ?? 0n
    for (const port of net.ports.filter((_, i) => i !== victim)) {
      for (let epoch = 0n; epoch <= last + 1n; epoch++) {
        const response = await fetch(`http://127.0.0.1:${port}/v1/reports/${epoch}`)
        const { reports } = (await response.json()) as { reports: { signer: string; digest: string }[] }
        const digests = new Set(
          reports.filter((r) => r.signer.toLowerCase() === address.toLowerCase()).map((r) => r.digest),
        )
        expect(
          digests.size,
          `digests of the victim for epoch ${epoch} held by port ${port}`,
        ).toBeLessThanOrEqual(1)
      }
    }
    expect(net.indexer.store.equivocations()).toEqual([])
    const { validatorSet } = getContracts(net.admin, net.deployment)
    expect(await validatorSet.read.isActive([address as `0x${string}`])).toBe(true)
  }, 1_800_000)
})
