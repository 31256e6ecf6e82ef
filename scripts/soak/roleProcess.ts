/**
 * One depin role run as a process of its own (`depin gateway run` / `depin validator run`) that
 * the soak kills and restarts: it knows when the process is up (from its `…_started` log line
 * until it is killed or exits), keeps that timeline, and appends everything the process prints
 * to a log file of its own, one header line per start.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'

export type RoleKind = 'gateway' | 'validator'

/** When the role was up: from its started line to its kill or exit (ms since the epoch). */
export type UpSpan = { from: number; to: number | undefined }

export type RoleProcess = {
  name: string
  kind: RoleKind
  /** Spawns the process and resolves once it logged its started line; rejects if it exits first or takes over `timeoutMs`. */
  start(timeoutMs?: number): Promise<void>
  /** SIGKILL; resolves once it has exited. The role counts as down from the moment of the signal. */
  kill(): Promise<void>
  /** SIGTERM, then SIGKILL after `timeoutMs`; says whether it stopped by itself. */
  stop(timeoutMs?: number): Promise<{ clean: boolean }>
  isUp(): boolean
  /** Spawned, its started line not logged yet (loading, opening its stores, catching up). */
  isStarting(): boolean
  /** Every span it was up, oldest first (the last one open while it runs). */
  spans(): readonly UpSpan[]
  /** Exits nobody asked for (not after kill() or stop()), with their time and code. */
  unexpectedExits(): readonly { at: number; code: number | null; signal: string | null }[]
  /** How many JSON events of this name it logged, over all its runs. */
  eventCount(event: string): number
  /** The last JSON events it logged of these names (at most 500 each), for a report. */
  lastEvents(event: string): readonly Record<string, unknown>[]
  /** Milliseconds from each spawn to its started line. */
  startTimes(): readonly number[]
  /** SIGKILL at once, without waiting (for the soak's own exit, so nothing it started outlives it). */
  killNow(): void
  /** Closes its log file (after the process has ended). */
  closeLog(): Promise<void>
}

export type CreateRoleProcessParameters = {
  name: string
  kind: RoleKind
  /** Arguments after `node --import tsx` (the CLI entry and its arguments). */
  args: readonly string[]
  logFile: string
  /** Called on an exit nobody asked for. */
  onUnexpectedExit?: (role: RoleProcess) => void
}

const STARTED_EVENT: Record<RoleKind, string> = {
  gateway: 'gateway_started',
  validator: 'validator_started',
}

/** A role process the soak controls; nothing runs until `start()`. */
export function createRoleProcess(parameters: CreateRoleProcessParameters): RoleProcess {
  const { name, kind, args, logFile } = parameters
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' })
  const spans: UpSpan[] = []
  const unexpected: { at: number; code: number | null; signal: string | null }[] = []
  const counts = new Map<string, number>()
  const last = new Map<string, Record<string, unknown>[]>()
  let child: ChildProcess | undefined
  let runs = 0
  const startTimes: number[] = []
  /** Set when the soak itself ends the current process (kill or stop). */
  let ending = false

  const closeSpan = (at: number) => {
    const open = spans.at(-1)
    if (open && open.to === undefined) open.to = at
  }
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve()
      else c.once('exit', () => resolve())
    })

  // nothing the soak started outlives it, even when it fails
  process.on('exit', () => role.killNow())
  const role: RoleProcess = {
    name,
    kind,
    start(timeoutMs = 120_000) {
      if (running()) throw new Error(`${name} is already running`)
      runs++
      ending = false
      log.write(`--- ${name} start #${runs} at ${new Date().toISOString()}\n`)
      const spawnedAt = Date.now()
      // a process group of its own: a Ctrl-C at the terminal reaches the soak, which stops it in order
      const spawned = spawn(process.execPath, ['--import', 'tsx', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
      child = spawned
      return new Promise<void>((resolve, reject) => {
        let pending = ''
        let started = false
        const timer = setTimeout(() => {
          if (started) return
          reject(new Error(`${name} did not log ${STARTED_EVENT[kind]} within ${timeoutMs} ms`))
        }, timeoutMs)
        spawned.stdout?.on('data', (chunk: Buffer) => {
          log.write(chunk)
          pending += chunk.toString()
          const lines = pending.split('\n')
          pending = lines.pop() ?? ''
          for (const line of lines) {
            if (!line.startsWith('{')) continue
            let event: Record<string, unknown>
            try {
              event = JSON.parse(line) as Record<string, unknown>
            } catch {
              continue
            }
            const type = String(event.event)
            counts.set(type, (counts.get(type) ?? 0) + 1)
            const kept = last.get(type) ?? []
            kept.push(event)
            if (kept.length > 500) kept.shift()
            last.set(type, kept)
            if (type === STARTED_EVENT[kind] && !started) {
              started = true
              clearTimeout(timer)
              spans.push({ from: Date.now(), to: undefined })
              startTimes.push(Date.now() - spawnedAt)
              resolve()
            }
          }
        })
        spawned.stderr?.on('data', (chunk: Buffer) => log.write(chunk))
        spawned.once('exit', (code, signal) => {
          clearTimeout(timer)
          closeSpan(Date.now())
          log.write(`--- ${name} exited (code ${code}, signal ${signal}) at ${new Date().toISOString()}\n`)
          if (!ending) {
            unexpected.push({ at: Date.now(), code, signal })
            parameters.onUnexpectedExit?.(role)
          }
          if (!started) reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it started`))
        })
      })
    },
    async kill() {
      const c = child
      if (!c || !running()) return
      ending = true
      closeSpan(Date.now())
      c.kill('SIGKILL')
      await exited(c)
    },
    async stop(timeoutMs = 20_000) {
      const c = child
      if (!c || !running()) return { clean: true }
      ending = true
      c.kill('SIGTERM')
      const stopped = await Promise.race([
        exited(c).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
      ])
      if (!stopped) {
        c.kill('SIGKILL')
        await exited(c)
      }
      return { clean: stopped && c.exitCode === 0 }
    },
    isUp: () => running() && spans.at(-1)?.to === undefined && spans.length > 0,
    isStarting: () => running() && !role.isUp(),
    spans: () => spans,
    unexpectedExits: () => unexpected,
    eventCount: (event) => counts.get(event) ?? 0,
    lastEvents: (event) => last.get(event) ?? [],
    startTimes: () => startTimes,
    killNow() {
      if (!child || !running()) return
      ending = true
      child.kill('SIGKILL')
    },
    closeLog: () => new Promise<void>((resolve) => log.end(() => resolve())),
  }
  return role
}
