/**
 * The soak's faults: SIGKILLs the gateway and the validators at random moments until `until`,
 * spread so that about `kills` happen, and restarts each killed process after a short random
 * delay. Never more than one validator is down at a time (a kill waits until every validator is
 * up again), so a quorum of n − 1 stays up; the gateway may be down alongside one validator.
 */
import { mulberry32 } from '../../src/device/simulator/random.ts'
import type { RoleKind, RoleProcess } from './roleProcess.ts'

/** Tries to bring a killed process back before the schedule gives up on it (and says so). */
const RESTART_ATTEMPTS = 5

export type KillRecord = { at: number; role: string; kind: RoleKind; restartedAt: number | undefined }

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
  const allValidatorsUp = () => validators.every((v) => v.isUp())

  const restart = (role: RoleProcess, record: KillRecord) => {
    const restarting = (async () => {
      await new Promise((resolve) => setTimeout(resolve, between(parameters.restartDelayMs)))
      for (let attempt = 1; attempt <= RESTART_ATTEMPTS; attempt++) {
        try {
          await role.start()
          record.restartedAt = Date.now()
          return
        } catch (error) {
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
    const kind: RoleKind = random() < parameters.gatewayShare ? 'gateway' : 'validator'
    const eligible = kind === 'gateway' ? () => gateway.isUp() : allValidatorsUp
    const waited = Date.now()
    if (!(await whenReady(eligible))) break
    // it had to wait for a restart: strike at a random moment shortly after, not right at it
    if (Date.now() - waited > 100) {
      await untilTime(Date.now() + between([0, 3_000]))
      if (!(await whenReady(eligible))) break
    }
    const target =
      kind === 'gateway' ? gateway : (validators[Math.floor(random() * validators.length)] as RoleProcess)
    const record: KillRecord = { at: Date.now(), role: target.name, kind, restartedAt: undefined }
    await target.kill()
    done.push(record)
    parameters.onKill?.(record)
    restart(target, record)
  }
  while (restarts.size > 0) await Promise.all([...restarts])
  return done
}
