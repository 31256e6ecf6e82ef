/**
 * The soak's faults: SIGKILLs the gateway and the validators at random moments until `until`,
 * spread so that about `kills` happen, and restarts each killed process after a short random
 * delay. Never more than one validator is down at a time (a kill waits until every validator is
 * up again), so a quorum of n − 1 stays up; the gateway may be down alongside one validator.
 * Each kill is the gateway with probability `gatewayShare`, else a validator; when the schedule
 * is behind its pace and the kind drawn must wait for a restart, its process still starting is
 * killed again (a validator only if it is the one down), or else the other kind goes instead.
 */
import { mulberry32 } from '../../src/usecases/simulatorRandom.ts'
import type { RoleKind, RoleProcess } from './roleProcess.ts'

/** Tries to bring a killed process back before the schedule gives up on it (and says so). */
const RESTART_ATTEMPTS = 5

export type KillRecord = {
  at: number
  role: string
  kind: RoleKind
  /** It was killed while still starting after an earlier kill (a crash during recovery). */
  duringStart: boolean
  /** Its restart waits the long outage delay (the gateway only). */
  long?: boolean
  /** When it was up again; undefined when it was killed again while starting. */
  restartedAt: number | undefined
}

export type RunKillScheduleParameters = {
  gateway: RoleProcess
  validators: readonly RoleProcess[]
  kills: number
  /** Unix ms after which no kill comes (asked again each time: the soak may end early). */
  until: () => number
  seed: number
  /** Share of the kills that go to the gateway (the rest to a random validator). */
  gatewayShare: number
  /** Milliseconds between a kill and the restart, drawn uniformly. */
  restartDelayMs: readonly [number, number]
  /**
   * Share of the gateway's kills after which it stays down longer (delay drawn from `delayMs`):
   * outages across a seal longer than the validators wait, whose batches count late.
   */
  gatewayOutage?: { share: number; delayMs: readonly [number, number] }
  onKill?: (kill: KillRecord) => void
  /** A restart that failed (the process did not come up); it is tried again, up to 5 times. */
  onRestartFailed?: (role: RoleProcess, error: unknown) => void
}

/** Runs the schedule; resolves after the last kill's restart, with every kill. */
export async function runKillSchedule(parameters: RunKillScheduleParameters): Promise<KillRecord[]> {
  const { gateway, validators, kills, until } = parameters
  const random = mulberry32(parameters.seed)
  const between = ([low, high]: readonly [number, number]) => low + (high - low) * random()
  const done: KillRecord[] = []
  const restarts = new Set<Promise<void>>()
  /** Resolves at `at`, or at once when the schedule is over. */
  const untilTime = (at: number) =>
    new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, Math.min(at, until()) - Date.now())))
  /** Polls until `ready()` or the schedule is over; says which. */
  const whenReady = async (ready: () => boolean) => {
    while (!ready()) {
      if (Date.now() >= until()) return false
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return true
  }
  const began = Date.now()
  /**
   * Who a kill of this kind may hit now: the gateway if up; any validator while all are up. With
   * `starting`, also one still starting after its kill: the gateway, or the only validator down.
   */
  const targets = (kind: RoleKind, starting: boolean): RoleProcess[] => {
    if (kind === 'gateway') return gateway.isUp() || (starting && gateway.isStarting()) ? [gateway] : []
    const down = validators.filter((v) => !v.isUp())
    if (down.length === 0) return [...validators]
    return starting && down.length === 1 && down[0]?.isStarting() ? down : []
  }
  /** Each role's kill count: a restart whose process was killed again while starting gives way. */
  const killsOf = new Map<RoleProcess, number>()

  const restart = (role: RoleProcess, record: KillRecord) => {
    const generation = killsOf.get(role)
    const superseded = () => killsOf.get(role) !== generation
    const restarting = (async () => {
      const outage = parameters.gatewayOutage
      const long = role === gateway && outage !== undefined && random() < outage.share
      if (long) record.long = true
      const delay = long ? between(outage.delayMs) : between(parameters.restartDelayMs)
      await new Promise((resolve) => setTimeout(resolve, delay))
      for (let attempt = 1; attempt <= RESTART_ATTEMPTS; attempt++) {
        try {
          await role.start()
          record.restartedAt = Date.now()
          return
        } catch (error) {
          if (superseded()) return // killed again while starting: that kill restarts it
          parameters.onRestartFailed?.(role, error)
          await role.kill()
        }
      }
    })()
    restarts.add(restarting)
    void restarting.finally(() => restarts.delete(restarting))
  }

  while (done.length < kills && Date.now() < until()) {
    // the mean gap spreads the kills left over the time left, so a slow restart is caught up on
    const meanGap = (until() - Date.now()) / (kills - done.length)
    await untilTime(Date.now() + meanGap * between([0.3, 1.7]))
    if (Date.now() >= until()) break
    const drawn: RoleKind = random() < parameters.gatewayShare ? 'gateway' : 'validator'
    const other: RoleKind = drawn === 'gateway' ? 'validator' : 'gateway'
    // Behind the pace (restarts slower than the gaps): rather than wait for a restart, the drawn
    // kind's process still starting (a crash during recovery), else the other kind; else wait.
    const behind = done.length < (kills * (Date.now() - began)) / (until() - began)
    const choices: [RoleKind, boolean][] = behind
      ? [
          [drawn, false],
          [drawn, true],
          [other, false],
          [other, true],
        ]
      : [[drawn, false]]
    let [kind, pool] = [drawn, [] as RoleProcess[]]
    for (const [k, starting] of choices) {
      pool = targets(k, starting)
      kind = k
      if (pool.length > 0) break
    }
    if (pool.length === 0) {
      kind = drawn
      if (!(await whenReady(() => targets(drawn, false).length > 0))) break
      // it had to wait for a restart: strike at a random moment shortly after, not right at it
      await untilTime(Date.now() + between([0, 2_000]))
      if (!(await whenReady(() => targets(drawn, false).length > 0))) break
      pool = targets(drawn, false)
    }
    const target = pool[Math.floor(random() * pool.length)] as RoleProcess
    const record: KillRecord = {
      at: Date.now(),
      role: target.name,
      kind,
      duringStart: target.isStarting(),
      restartedAt: undefined,
    }
    killsOf.set(target, (killsOf.get(target) ?? 0) + 1)
    await target.kill()
    done.push(record)
    parameters.onKill?.(record)
    restart(target, record)
  }
  while (restarts.size > 0) await Promise.all([...restarts])
  return done
}
