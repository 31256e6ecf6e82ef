import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { ChainError } from '../errors.ts'

export type StartAnvilParameters = {
  /** Directory for `anvil-state.json`; the chain is reloaded from it at start and saved while running. Omit for a throwaway chain. */
  dataDir?: string
  /** Port on 127.0.0.1; 0 (default) takes a free one. */
  port?: number
  chainId?: number
  /**
   * Also mine an (empty if need be) block every this many seconds, so chain time advances
   * without transactions. Transactions still mine at once (anvil's mixed mining). Omit for
   * plain automine.
   */
  blockTime?: number
  /** Seconds between state dumps to disk (default 2), so a crash loses at most that much. */
  stateInterval?: number
}

export type StartAnvilReturnType = {
  rpcUrl: string
  port: number
  /** Stops anvil (it saves its state on exit) and resolves once it has exited. */
  stop(): Promise<void>
}

/** The chain id of the embedded anvil (anvil's default): a local chain, where the test keys below may pay. */
export const LOCAL_CHAIN_ID = 31337

/** anvil's default mnemonic accounts (as anvil prints them): public test keys, known to everyone, fine only for a local chain. */
export const anvilAccounts = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
] as const

/** Path of the anvil binary shipped by the npm package `@foundry-rs/anvil`. */
export function anvilBinaryPath(): string {
  const require = createRequire(import.meta.url)
  const pkg = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil')
  } catch (cause) {
    throw new ChainError(
      'ANVIL_NOT_INSTALLED',
      `anvil binary package ${pkg} is not installed; run npm install`,
      {
        cause,
      },
    )
  }
}

/**
 * Starts an embedded anvil on loopback and resolves once it answers JSON-RPC.
 * @example
 * const anvil = await startAnvil({ dataDir: '.data' })
 * // … use anvil.rpcUrl …
 * await anvil.stop()
 */
export async function startAnvil(parameters: StartAnvilParameters = {}): Promise<StartAnvilReturnType> {
  const args = ['--host', '127.0.0.1', '--port', String(parameters.port ?? 0)]
  args.push('--chain-id', String(parameters.chainId ?? LOCAL_CHAIN_ID))
  if (parameters.blockTime !== undefined)
    args.push('--block-time', String(parameters.blockTime), '--mixed-mining')
  if (parameters.dataDir !== undefined) {
    mkdirSync(parameters.dataDir, { recursive: true })
    args.push('--state', join(parameters.dataDir, 'anvil-state.json'))
    args.push('--state-interval', String(parameters.stateInterval ?? 2))
  }
  // Its own process group: a Ctrl-C meant for depin must not kill the chain before depin has
  // stopped what uses it; depin stops anvil last, and kills it if depin itself exits.
  const child = spawn(anvilBinaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  child.once('exit', () => process.off('exit', killOnExit))
  const port = await waitForListening(child)
  const rpcUrl = `http://127.0.0.1:${port}`
  return {
    rpcUrl,
    port,
    stop: () => stopChild(child),
  }
}

function waitForListening(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new ChainError('ANVIL_START_TIMEOUT', 'anvil did not start listening within 30 s', {
          details: { output },
        }),
      )
    }, 30_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /Listening on [\d.]+:(\d+)/.exec(output)
      if (match?.[1]) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.stdout?.resume() // keep draining so anvil never blocks on a full pipe
        resolve(Number(match[1]))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(
        new ChainError(
          'ANVIL_EXITED',
          `anvil exited with code ${code} before listening: ${output.trim().split('\n').at(-1) ?? ''}`,
          {
            details: { output },
          },
        ),
      )
    })
  })
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(killTimer)
      resolve()
    })
    child.kill('SIGINT')
  })
}
