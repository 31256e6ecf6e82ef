#!/usr/bin/env node
// Runs the TypeScript CLI with the tsx loader in one node process (no wrapper process in between,
// so Ctrl-C reaches depin once and it can stop everything cleanly). Before the CLI loads, the
// preloaded scripts/ensureContracts.ts compiles the contracts if they are missing or outdated.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

// The child gets the terminal's Ctrl-C itself; this wrapper waits for it to finish stopping.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => {})
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--import',
    pathToFileURL(join(root, 'scripts', 'ensureContracts.ts')).href,
    join(root, 'src', 'cli', 'main.ts'),
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit', cwd: process.cwd() },
)
process.exit(result.status ?? 1)
