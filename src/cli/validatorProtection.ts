import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { privateKeyToAddress } from 'viem/accounts'
import { readOperatorKey } from '../chain/connectChain.ts'
import { readDeployment } from '../chain/deployment.ts'
import { writeFileDurably } from '../device/writeFileDurably.ts'
import { ConfigError } from '../errors.ts'
import { openSlashingProtection } from '../validator/slashingProtection.ts'
import { readValidatorConfig } from './validatorRun.ts'

/** The signing record of the validator a config file describes (its key, its network, its store). */
function openConfiguredProtection(configPath: string) {
  const config = readValidatorConfig(configPath)
  const key = readOperatorKey(config.keyFile)
  if (!key) throw new ConfigError('KEY_FILE_EMPTY', `key file ${config.keyFile} is empty`)
  const deployment = readDeployment(config.deployment)
  return openSlashingProtection(join(config.dataDir, 'validator.db'), {
    chainId: deployment.chainId,
    epochManager: deployment.contracts.epochManager,
    validator: privateKeyToAddress(key),
  })
}

/**
 * `depin validator protection export --config FILE [--out FILE]`: the digests this validator
 * signed, per epoch, as an interchange file (to stdout without --out) to take to a new machine.
 */
export function runProtectionExport(options: { config: string; out?: string }): void {
  const protection = openConfiguredProtection(options.config)
  try {
    const file = protection.exportInterchange()
    const text = `${JSON.stringify(file, null, 2)}\n`
    if (!options.out) {
      process.stdout.write(text)
      return
    }
    writeFileDurably(options.out, text, 0o644)
    const entry = file.data[0]
    console.error(
      `exported ${entry?.signedReports.length ?? 0} signed reports and ${entry?.signedBatchSets.length ?? 0} batch sets of ${entry?.validator} to ${options.out}`,
    )
  } finally {
    protection.close()
  }
}

/**
 * `depin validator protection import --config FILE --file FILE`: takes the records exported on
 * the validator's previous machine; run it before the validator's first start here.
 */
export function runProtectionImport(options: { config: string; file: string }): void {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(options.file, 'utf8'))
  } catch (cause) {
    throw new ConfigError('SLASHING_INTERCHANGE_INVALID', `${options.file} is not a JSON file`, { cause })
  }
  const protection = openConfiguredProtection(options.config)
  try {
    const result = protection.importInterchange(parsed)
    console.log(
      `imported ${result.imported} records (${result.alreadyKnown} already here, ${result.conflicts} conflicting kept out); nothing will be signed at or below epoch ${result.watermark ?? 'none'} without a record`,
    )
  } finally {
    protection.close()
  }
}
