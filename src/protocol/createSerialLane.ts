/**
 * Runs async work one piece at a time, in the order it was handed in: a section that checks
 * state, awaits a write and then updates the state is never interleaved with another.
 * A piece that fails fails its own caller only; the next one runs as usual.
 */
export function createSerialLane() {
  let tail: Promise<unknown> = Promise.resolve()
  return function inLane<T>(work: () => Promise<T> | T): Promise<T> {
    const run = tail.then(work)
    tail = run.catch(() => {})
    return run
  }
}
