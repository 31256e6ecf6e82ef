import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DepinError } from '../errors.ts'

export type SpawnValidatorProcessesParameters = {
  /** One directory per validator, each holding its `key` file. */
  validatorDirs: readonly string[]
  rpcUrl: string
  blueprintPath: string
  deploymentPath: string
  leaderTimeoutMs?: number
  /** Each JSON event line a validator prints, with the validator's index. */
  onEvent?: (index: number, event: Record<string, unknown>) => void
}

export type ValidatorProcesses = {
  /** The report exchange URL of each validator. */
  urls: string[]
  /** SIGTERM to each, then waits for all to exit. */
  stop(): Promise<void>
}

const mainScript = fileURLToPath(new URL('../cli/main.ts', import.meta.url))

/** A port the OS just handed out, for a config written before its process listens. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolvePort(port))
    })
  })
}

/**
 * Starts every validator as a process of its own (`depin validator run`), peered with each
 * other over HTTP, and resolves once each has started. Each writes its config next to its key.
 */
export async function spawnValidatorProcesses(
  parameters: SpawnValidatorProcessesParameters,
): Promise<ValidatorProcesses> {
  const ports: number[] = []
  for (const _ of parameters.validatorDirs) ports.push(await freePort())
  const urls = ports.map((port) => `http://127.0.0.1:${port}`)
  const children: ChildProcess[] = []
  const started = parameters.validatorDirs.map(async (dir, index) => {
    const config = join(dir, 'config.json')
    writeFileSync(
      config,
      `${JSON.stringify(
        {
          dataDir: resolve(dir),
          keyFile: resolve(dir, 'key'),
          rpcUrl: parameters.rpcUrl,
          blueprint: resolve(parameters.blueprintPath),
          deployment: resolve(parameters.deploymentPath),
          peers: urls.filter((_, i) => i !== index),
          port: ports[index],
          leaderTimeoutMs: parameters.leaderTimeoutMs ?? 10_000,
        },
        null,
        2,
      )}\n`,
    )
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', mainScript, 'validator', 'run', '--config', config],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    children.push(child)
    let pending = ''
    let errors = ''
    await new Promise<void>((resolveStart, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        pending += chunk.toString()
        const lines = pending.split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) {
          let event: Record<string, unknown>
          try {
            event = JSON.parse(line) as Record<string, unknown>
          } catch {
            continue
          }
          if (event.event === 'validator_started') resolveStart()
          parameters.onEvent?.(index, event)
        }
      })
      child.stderr?.on('data', (chunk: Buffer) => {
        errors += chunk.toString()
      })
      child.once('exit', (code) =>
        reject(
          new DepinError(
            'VALIDATOR_PROCESS_EXITED',
            `validator v${index} exited with code ${code}: ${errors.trim().split('\n').at(-1) ?? ''}`,
          ),
        ),
      )
    })
  })
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolveExit) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolveExit()
            const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
            child.once('exit', () => {
              clearTimeout(kill)
              resolveExit()
            })
            child.kill('SIGTERM')
          }),
      ),
    )
  }
  try {
    await Promise.all(started)
  } catch (error) {
    await stop()
    throw error
  }
  return { urls, stop }
}
