import { Worker } from 'node:worker_threads'

/**
 * Starts a worker thread on the module `name` next to the caller (`callerUrl`: its
 * import.meta.url), in the caller's flavour: `name.js` from built sources, `name.ts` from
 * TypeScript sources (tsx, vitest), where the worker first registers tsx's loader in its own
 * thread, since Node 20 workers do not inherit the parent's.
 * @example spawnModuleWorker(import.meta.url, 'providerStoreWorker', { path })
 */
export function spawnModuleWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  const source = callerUrl.endsWith('.ts') ? '.ts' : '.js'
  const entry = new URL(`./${name}${source}`, callerUrl)
  if (source === '.js') return new Worker(entry, { workerData })
  const tsx = import.meta.resolve('tsx/esm/api')
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}) })`
  return new Worker(bootstrap, { eval: true, workerData })
}
