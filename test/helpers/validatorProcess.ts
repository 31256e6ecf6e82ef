/**
 * A validator process for fault tests: `depin validator run` with test-only behaviour that no
 * config file or command line of the real CLI can switch on.
 *
 *   node --import tsx test/helpers/validatorProcess.ts --config FILE [--fault KIND] [--crash-at STEP]
 *
 * --fault wrongRewardsRoot   signs only a report whose rewards root is the honest one hashed once
 *                            more, and submits it on-chain with its own signature (the chain
 *                            refuses it); it never helps submit the honest report
 * --fault equivocate         signs both the honest report and that false one (slashable)
 * --crash-at STEP            SIGKILLs itself the first time it reaches STEP (see ValidatorStep)
 *
 * The Byzantine signatures are made here, with the validator's raw key, outside its slashing
 * protection: an honest validator cannot be made to equivocate.
 */
import { type Account, keccak256 } from 'viem'
import { getContracts } from '../../src/chain/getContracts.ts'
import { hashEpochReport, signEpochReport } from '../../src/chain/signEpochReport.ts'
import type { EpochReport } from '../../src/chain/typedData.ts'
import { logLine } from '../../src/cli/logLine.ts'
import { runValidator, type ValidatorTestHooks } from '../../src/cli/validatorRun.ts'
import type { ValidatorStep } from '../../src/validator/createValidator.ts'
import type { ReportExchange } from '../../src/validator/reportExchange.ts'

const argument = (name: string) => {
  const at = process.argv.indexOf(name)
  return at < 0 ? undefined : process.argv[at + 1]
}
const config = argument('--config')
if (!config) throw new Error('usage: validatorProcess.ts --config FILE [--fault KIND] [--crash-at STEP]')
const fault = argument('--fault')
const crashAt = argument('--crash-at') as ValidatorStep | undefined
if (fault !== undefined && fault !== 'wrongRewardsRoot' && fault !== 'equivocate')
  throw new Error(`unknown fault ${fault}`)

const hooks: ValidatorTestHooks = {}
if (crashAt) {
  hooks.onStep = (step, epoch) => {
    if (step !== crashAt) return
    logLine('crashing', { step, epoch })
    process.kill(process.pid, 'SIGKILL')
  }
}
if (fault) {
  hooks.wrapExchange = (exchange, { clients, deployment }): ReportExchange => {
    const account = clients.account as Account
    const { chainId } = deployment
    const { epochManager } = deployment.contracts
    const signLie = async (honest: EpochReport) => {
      const report = { ...honest, rewardsRoot: keccak256(honest.rewardsRoot) }
      const { signature } = await signEpochReport({ account, chainId, epochManager, report })
      return {
        epoch: report.epoch,
        report,
        digest: hashEpochReport(chainId, epochManager, report),
        signer: account.address,
        signature,
      }
    }
    return {
      ...exchange,
      async publish(signed) {
        const lie = await signLie(signed.report)
        if (fault === 'equivocate') {
          await exchange.publish(signed)
          return exchange.publish(lie)
        }
        const outcome = await exchange.publish(lie)
        // stands by its false report on-chain with the only signature it has: refused
        try {
          await getContracts(clients, deployment).epochManager.write.submitReport([
            lie.report,
            [lie.signature],
          ])
        } catch (error) {
          logLine('false_report_refused', {
            epoch: lie.epoch,
            error: error instanceof Error ? error.message.split('\n')[0] : String(error),
          })
        }
        return outcome
      },
      // a wrongRewardsRoot liar never helps the honest report to the chain
      collect: fault === 'wrongRewardsRoot' ? async () => [] : exchange.collect,
    }
  }
}
await runValidator({ config }, hooks)
process.exit(0)
