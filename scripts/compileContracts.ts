/**
 * Compiles contracts/*.sol with the npm `solc` (no network) and writes
 * src/chain/generated/contracts.ts: each contract's ABI `as const` (so viem infers every type)
 * and its creation bytecode. Skips the work when sources and settings are unchanged.
 *
 * Run as a script by `npm install`/`npm ci` (postinstall) and `npm run build:contracts`; the
 * `depin` command (bin/depin.js, through scripts/ensureContracts.ts) compiles on demand when the
 * file is missing or was built from other sources. solc's output stays off the terminal unless
 * the compile fails; then each error names its contract file, line and reason.
 */
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DepinError } from '../src/errors.ts'

const require = createRequire(import.meta.url)
type Solc = {
  version(): string
  compile(
    input: string,
    callbacks: { import(path: string): { contents: string } | { error: string } },
  ): string
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const contractsDir = join(root, 'contracts')
/** The generated module every chain-facing part of depin imports. */
export const generatedContractsFile = join(root, 'src/chain/generated/contracts.ts')
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
}

type Sources = Record<string, { content: string }>

function readSources(): Sources {
  const sources: Sources = {}
  for (const file of readdirSync(contractsDir).sort()) {
    if (file.endsWith('.sol')) sources[file] = { content: readFileSync(join(contractsDir, file), 'utf8') }
  }
  return sources
}

/**
 * What the generated file was built from: the sources, the settings, the pinned solc and
 * OpenZeppelin packages and this script. Cheap (it loads no compiler), so the CLI checks it on
 * every start.
 */
function fingerprintOf(sources: Sources): string {
  return createHash('sha256')
    .update(readFileSync(require.resolve('solc/package.json')))
    .update(JSON.stringify(settings))
    .update(JSON.stringify(sources))
    .update(readFileSync(require.resolve('@openzeppelin/contracts/package.json')))
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .digest('hex')
}

/** The pinned compiler's version, without loading it (loading solc takes most of a second). */
export const solcPackageVersion = (): string =>
  (JSON.parse(readFileSync(require.resolve('solc/package.json'), 'utf8')) as { version: string }).version

/** How many contract files a compile reads. */
export const contractFileCount = (): number => Object.keys(readSources()).length

const fingerprintLine = (fingerprint: string) => `// fingerprint: ${fingerprint}\n`

/** Why the generated file must be rebuilt (`missing`, or `outdated` after a contract changed), or `undefined` when it is current. */
export function contractsStaleness(): 'missing' | 'outdated' | undefined {
  if (!existsSync(generatedContractsFile)) return 'missing'
  const fingerprint = fingerprintOf(readSources())
  return readFileSync(generatedContractsFile, 'utf8').includes(fingerprintLine(fingerprint))
    ? undefined
    : 'outdated'
}

export type CompileContractsReturnType = {
  /** Files compiled (contracts/*.sol). */
  files: number
  solcVersion: string
  /** The generated module, written only when it was stale. */
  outFile: string
  seconds: number
}

/** The compile failed; `details.errors` holds solc's full messages (with the offending source lines). */
export class ContractsCompileError extends DepinError {
  override readonly name = 'ContractsCompileError'
}

/**
 * Compiles contracts/*.sol and writes {@link generatedContractsFile} (atomically: a concurrent
 * reader sees the old file or the new one, never half of one).
 * @throws ContractsCompileError naming each failing contract file, line and solc's reason.
 */
export function compileContracts(): CompileContractsReturnType {
  const sources = readSources()
  const fingerprint = fingerprintOf(sources)
  const started = Date.now()
  const solc = require('solc') as Solc
  const output = JSON.parse(
    solc.compile(JSON.stringify({ language: 'Solidity', sources, settings }), {
      import(path) {
        try {
          return { contents: readFileSync(require.resolve(path), 'utf8') }
        } catch {
          return { error: `import not found: ${path}` }
        }
      },
    }),
  ) as {
    errors?: {
      severity: string
      type: string
      message: string
      formattedMessage: string
      sourceLocation?: { file: string; start: number }
    }[]
    contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>
  }

  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) {
    const where = (e: (typeof errors)[number]) => {
      const location = e.sourceLocation
      if (!location) return 'contracts'
      const source = sources[location.file]?.content
      // solc counts bytes, not UTF-16 units
      const line = source
        ? Buffer.from(source).subarray(0, Math.max(location.start, 0)).toString().split('\n').length
        : undefined
      const file = relative(root, join(contractsDir, location.file))
      return line === undefined ? file : `${file}:${line}`
    }
    throw new ContractsCompileError(
      'CONTRACTS_COMPILE_FAILED',
      `the contracts do not compile with solc ${solcPackageVersion()}:\n${errors.map((e) => `  ${where(e)}: ${e.type}: ${e.message}`).join('\n')}`,
      { details: { errors: errors.map((e) => e.formattedMessage) } },
    )
  }

  const lowerFirst = (name: string) => name.charAt(0).toLowerCase() + name.slice(1)
  type AbiItem = { type: string; name?: string }
  const deployable = Object.keys(sources).flatMap((file) =>
    Object.entries(output.contracts?.[file] ?? {}).filter(
      ([, artifact]) => artifact.evm.bytecode.object.length > 0,
    ),
  )
  // A revert raised in a nested call (the distributor refusing a total during submitReport) reaches
  // the caller with the callee's error, so every ABI also carries every protocol error: viem then
  // decodes a custom error whichever contract raised it.
  const allErrors = new Map<string, AbiItem>()
  for (const [, artifact] of deployable) {
    for (const item of artifact.abi as AbiItem[])
      if (item.type === 'error' && item.name) allErrors.set(item.name, item)
  }
  let code = `// Generated by scripts/compileContracts.ts — do not edit.\n${fingerprintLine(fingerprint)}// solc ${solc.version()}\n\n`
  for (const [name, artifact] of deployable) {
    const abi = artifact.abi as AbiItem[]
    const own = new Set(abi.filter((item) => item.type === 'error').map((item) => item.name))
    const foreign = [...allErrors.values()].filter((item) => !own.has(item.name))
    code += `export const ${lowerFirst(name)}Abi = ${JSON.stringify([...abi, ...foreign], null, 2)} as const\n\n`
    code += `export const ${lowerFirst(name)}Bytecode = '0x${artifact.evm.bytecode.object}' as const\n\n`
  }
  // what a deployment records, to tell a network deployed from other contract code
  const codeHash = createHash('sha256')
  for (const [, artifact] of deployable) codeHash.update(artifact.evm.bytecode.object)
  code += `/** SHA-256 of every contract's creation code: recorded by a deployment, compared on reuse. */\nexport const protocolCodeHash = '${codeHash.digest('hex')}' as const\n`
  mkdirSync(dirname(generatedContractsFile), { recursive: true })
  const partial = `${generatedContractsFile}.${process.pid}.tmp`
  writeFileSync(partial, code)
  renameSync(partial, generatedContractsFile)
  return {
    files: Object.keys(sources).length,
    solcVersion: solc.version(),
    outFile: generatedContractsFile,
    seconds: (Date.now() - started) / 1000,
  }
}

/** Prints a compile failure on stderr: the summary (which contract, which line, why), then solc's full messages. */
export function reportCompileFailure(error: unknown, prefix = 'contracts'): void {
  if (error instanceof ContractsCompileError) {
    console.error(`${prefix}: ${error.message}\n`)
    for (const message of (error.details.errors as string[] | undefined) ?? []) console.error(message)
  } else {
    console.error(`${prefix}: compiling the contracts failed:`, error)
  }
}

const runAsScript =
  process.argv[1] !== undefined &&
  existsSync(process.argv[1]) &&
  realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
if (runAsScript) {
  const staleness = contractsStaleness()
  if (staleness === undefined) {
    console.log('contracts: up to date')
  } else {
    console.log(`contracts: compiling ${contractFileCount()} files with solc ${solcPackageVersion()}…`)
    try {
      const result = compileContracts()
      console.log(
        `contracts: wrote ${relative(process.cwd(), result.outFile)} in ${result.seconds.toFixed(1)} s (solc ${result.solcVersion})`,
      )
    } catch (error) {
      reportCompileFailure(error)
      process.exit(1)
    }
  }
}
