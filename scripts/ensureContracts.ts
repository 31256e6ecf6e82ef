/**
 * Preloaded by bin/depin.js (`node --import`) before the CLI's modules are resolved: when
 * src/chain/generated/contracts.ts is missing (an install that ran no scripts) or was built from
 * other sources (a `git pull` or an edit that changed a contract), compiles the contracts first,
 * with a progress line on stderr, so every command's stdout stays its own. A compile error stops
 * the command with exit code 1, naming the contract file, line and reason.
 */
import {
  compileContracts,
  contractFileCount,
  contractsStaleness,
  reportCompileFailure,
  solcPackageVersion,
} from './compileContracts.ts'

const staleness = contractsStaleness()
if (staleness !== undefined) {
  const why =
    staleness === 'missing'
      ? 'the compiled contracts are missing'
      : 'the contracts changed since they were compiled'
  console.error(
    `depin: ${why}; compiling ${contractFileCount()} files with solc ${solcPackageVersion()} (a few seconds, once)…`,
  )
  try {
    const result = compileContracts()
    console.error(`depin: contracts compiled in ${result.seconds.toFixed(1)} s`)
  } catch (error) {
    reportCompileFailure(error, 'depin')
    process.exit(1)
  }
}
