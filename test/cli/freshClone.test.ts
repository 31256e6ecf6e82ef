/**
 * A fresh clone of the committed repo, installed, runs every command the README lists, with no
 * `npm start`/`npm test` first: the install compiles the contracts; `depin` compiles them on
 * demand after an install that ran no scripts, and again when a contract changed; a contract that
 * does not compile stops `depin` naming the file, line and reason.
 *
 * `npm ci` would take two minutes (better-sqlite3 compiles itself), so the clone borrows this
 * repo's node_modules through a symlink and then runs the root package's install-time lifecycle
 * scripts, in npm's order, with `npm run --if-present`: that is exactly what `npm ci`/`npm install`
 * runs for the root after it has placed the dependencies (whichever hook does the work), without
 * rebuilding the dependencies themselves (`npm rebuild` would recompile better-sqlite3 in the
 * shared node_modules). The dependencies' own install scripts are not under test here.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPublicClient, type Hex, http } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type StartAnvilReturnType, startAnvil } from '../../src/chain/startAnvil.ts'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim()
/** The README of the commit under test (others may be editing the work tree's). */
const readme = execFileSync('git', ['show', `${head}:README.md`], { cwd: repo, encoding: 'utf8' })

/** What npm runs for the root package after placing the dependencies, in its order (npm docs, "Life Cycle Operation Order"). */
const installLifecycle = [
  'preinstall',
  'install',
  'postinstall',
  'prepublish',
  'preprepare',
  'prepare',
  'postprepare',
]

type ReadmeCommand = {
  /** e.g. `gateway set` */
  verb: string
  /** Every flag the README's line names for it. */
  flags: string[]
}

/**
 * The `npx depin …` lines of the README's Commands block (continuation lines included, comments
 * dropped); the last word of a verb may list alternatives: `gateway list|set|remove` stands for
 * three verbs, each checked against the union of the flags written.
 */
function readmeCommands(text: string): ReadmeCommand[] {
  const section = text.split(/^## Commands$/m)[1]?.split(/^## /m)[0] ?? ''
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  const entries: string[] = []
  for (const line of block.split('\n')) {
    const code = line.replace(/\s#\s.*$/, '')
    if (line.startsWith('npx depin ')) entries.push(code.slice('npx depin '.length))
    else if (/^\s/.test(line) && entries.length > 0 && code.trim() !== '')
      entries[entries.length - 1] += ` ${code.trim()}`
    else if (line.trim() !== '' && !/^\s/.test(line)) entries.push('') // an `npm run …` line ends an entry
  }
  return entries
    .filter((entry) => entry !== '')
    .flatMap((entry) => {
      const words = entry.split(/\s+/)
      const verbWords = words.slice(
        0,
        words.findIndex((word) => word.startsWith('-') || word.startsWith('[') || word.startsWith('(')),
      )
      const flags = [...new Set(entry.match(/--[a-z][a-z0-9-]*/g) ?? [])].sort()
      // the last word of the verb may name alternatives: `gateway list|set|remove`
      const last = verbWords.at(-1)
      if (last === undefined) return []
      const prefix = verbWords.slice(0, -1)
      return last.split('|').map((sub) => ({ verb: [...prefix, sub].join(' '), flags }))
    })
}

const commands = readmeCommands(readme)

/** The options a command's `--help` lists, without `--help` itself. */
const helpFlags = (help: string) =>
  [...(help.split(/^Options:$/m)[1] ?? '').matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)]
    .map((match) => match[1] as string)
    .filter((flag) => flag !== '--help')

type Run = { code: number; stdout: string; stderr: string }
let root: string
let clone: string
let lifecycle: Run[]

/** The environment of a shell, without what the npm that started vitest put in it. */
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith('npm_') && key !== 'INIT_CWD'),
)

/** Runs a command in the clone; resolves with its exit code and output whatever the code. */
function run(command: string, args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: clone, env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}
/** `npx depin …` as the README writes it; `--no` refuses to fetch a package of that name from the registry. */
const depin = (...args: string[]) => run('npx', ['--no', 'depin', ...args])
const generated = () => join(clone, 'src/chain/generated/contracts.ts')

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'depin-fresh-clone-'))
  clone = join(root, 'depin')
  execFileSync('git', ['clone', '--quiet', '--no-checkout', repo, clone])
  execFileSync('git', ['checkout', '--quiet', head], { cwd: clone })
  symlinkSync(join(repo, 'node_modules'), join(clone, 'node_modules'), 'dir')
  lifecycle = []
  for (const event of installLifecycle) lifecycle.push(await run('npm', ['run', '--if-present', event]))
}, 300_000)
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true })
})

// generous: a compile takes 6 s on an idle machine, several times that on a busy one
describe('a fresh clone after npm install', { timeout: 300_000 }, () => {
  it('has the compiled contracts, and the install printed nothing of solc', async () => {
    for (const step of lifecycle) expect(step).toMatchObject({ code: 0, stderr: '' })
    expect(existsSync(generated())).toBe(true)
    const printed = lifecycle
      .flatMap((step) => step.stdout.split('\n'))
      .filter((line) => line.trim() !== '' && !line.startsWith('> ')) // npm's own "> depin@… postinstall" header
    expect(printed).toEqual([
      expect.stringMatching(/^contracts: compiling 6 files with solc 0\.8\.28…$/),
      expect.stringMatching(
        /^contracts: wrote src\/chain\/generated\/contracts\.ts in [\d.]+ s \(solc 0\.8\.28\+/,
      ),
    ])
    // nothing generated shows up as a change, and a build afterwards has nothing to do
    // (node_modules is this test's symlink, which the ignore rule `node_modules/` does not match)
    const status = execFileSync('git', ['status', '--porcelain', '--', '.', ':!node_modules'], {
      cwd: clone,
      encoding: 'utf8',
    })
    expect(status).toBe('')
    expect((await run('npm', ['run', 'build:contracts'])).stdout).toContain('contracts: up to date')
  })

  it('lists in the README every command depin has', async () => {
    expect(commands.length).toBeGreaterThanOrEqual(13)
    // `npx depin --help` would be npx's own help: `--` hands the flag to depin
    const help = await run('npx', ['--no', '--', 'depin', '--help'])
    expect(help).toMatchObject({ code: 0, stderr: '' })
    const verbs = [...(help.stdout.split(/^Commands:$/m)[1] ?? '').matchAll(/^ {2}([a-z]+)/gm)]
      .map((match) => match[1])
      .filter((verb) => verb !== 'help')
    expect(new Set(commands.map((command) => command.verb.split(' ')[0]))).toEqual(new Set(verbs))
  })

  it.each(commands)(
    'depin $verb --help runs and has exactly the flags the README gives it',
    async ({ verb, flags }) => {
      const help = await depin(...verb.split(' '), '--help')
      expect(help).toMatchObject({ code: 0, stderr: '' })
      expect(help.stdout).toMatch(new RegExp(`^Usage: depin ${verb} \\[options\\]`))
      expect(helpFlags(help.stdout).sort()).toEqual(flags)
    },
  )

  describe('depin deploy', () => {
    let anvil: StartAnvilReturnType | undefined
    afterAll(async () => {
      await anvil?.stop()
    })

    it('starts an embedded anvil, deploys the six contracts and writes deployment.json', async () => {
      const dataDir = join(root, 'data')
      const deploy = await depin('deploy', '--data-dir', dataDir)
      expect(deploy).toMatchObject({ code: 0, stderr: '' })
      expect(deploy.stdout).toMatch(/^chain 31337 at http:\/\/127\.0\.0\.1:\d+ \(embedded anvil\)$/m)
      expect(deploy.stdout).toContain(`deployment: ${join(dataDir, 'deployment.json')}`)

      const deployment = JSON.parse(readFileSync(join(dataDir, 'deployment.json'), 'utf8')) as {
        chainId: number
        codeHash: string
        contracts: Record<string, Hex>
      }
      expect(deployment.chainId).toBe(31337)
      expect(Object.keys(deployment.contracts).sort()).toEqual([
        'dataMarket',
        'depinToken',
        'deviceRegistry',
        'epochManager',
        'rewardDistributor',
        'validatorSet',
      ])
      // the code it deployed is the code the install compiled
      const compiled = /protocolCodeHash = '([0-9a-f]{64})'/.exec(readFileSync(generated(), 'utf8'))?.[1]
      expect(deployment.codeHash).toBe(compiled)
      for (const [name, address] of Object.entries(deployment.contracts))
        expect(deploy.stdout).toMatch(new RegExp(`^${name} +${address}$`, 'm'))

      // the chain it saved holds code at each of the six addresses
      anvil = await startAnvil({ dataDir: join(dataDir, 'chain') })
      const chain = createPublicClient({ transport: http(anvil.rpcUrl) })
      for (const address of Object.values(deployment.contracts)) {
        const code = await chain.getCode({ address })
        expect(code?.length ?? 0, address).toBeGreaterThan(2)
      }
    })
  })

  it('compiles on demand, with a progress line on stderr, after an install that ran no scripts', async () => {
    // what `npm install --ignore-scripts` leaves: no generated contracts
    rmSync(join(clone, 'src/chain/generated'), { recursive: true, force: true })
    const status = await depin('status', '--help')
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/^Usage: depin status \[options\]/)
    expect(status.stderr).toMatch(
      /^depin: the compiled contracts are missing; compiling 6 files with solc 0\.8\.28 .*\ndepin: contracts compiled in [\d.]+ s\n$/,
    )
    expect(existsSync(generated())).toBe(true)
    expect(await depin('status', '--help')).toMatchObject({ code: 0, stderr: '' })
  })

  it('recompiles a changed contract before it runs, and refuses one that does not compile by name', async () => {
    const token = join(clone, 'contracts/DepinToken.sol')
    const source = readFileSync(token, 'utf8')
    // a `git pull` or an edit that changed a contract
    writeFileSync(token, `${source}\n// changed after the install\n`)
    const changed = await depin('status', '--help')
    expect(changed.code).toBe(0)
    expect(changed.stderr).toMatch(/^depin: the contracts changed since they were compiled; compiling /)
    expect(changed.stderr).toMatch(/\ndepin: contracts compiled in [\d.]+ s\n$/)

    const before = readFileSync(generated(), 'utf8')
    const lines = source.split('\n')
    const pragma = lines.findIndex((line) => line.startsWith('pragma solidity'))
    lines.splice(pragma + 1, 0, 'uint256 constant broken = ;')
    writeFileSync(token, lines.join('\n'))
    const refused = await depin('status', '--help')
    expect(refused.code).toBe(1)
    expect(refused.stdout).toBe('')
    // the summary says which contract, where and why; solc's own message with the source follows
    expect(refused.stderr).toContain(
      `depin: the contracts do not compile with solc 0.8.28:\n  contracts/DepinToken.sol:${pragma + 2}: ParserError: Expected primary expression.\n`,
    )
    expect(refused.stderr).toContain('--> DepinToken.sol:')
    expect(refused.stderr).not.toContain('ERR_MODULE_NOT_FOUND')
    // the last good artifacts stay as they were
    expect(readFileSync(generated(), 'utf8')).toBe(before)
  })
})
