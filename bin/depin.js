#!/usr/bin/env node
// Runs the TypeScript CLI with the tsx loader in one node process (no wrapper process in between,
// so Ctrl-C reaches depin once and it can stop everything cleanly).
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// The child gets the terminal's Ctrl-C itself; this wrapper waits for it to finish stopping.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => {})
const here = dirname(fileURLToPath(import.meta.url))
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', join(here, '..', 'src', 'cli', 'main.ts'), ...process.argv.slice(2)],
  { stdio: 'inherit', cwd: process.cwd() },
)
process.exit(result.status ?? 1)
