import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Hex } from 'viem'
import { generatePrivateKey } from 'viem/accounts'
import { readOperatorKey } from './connectChain.ts'

/**
 * Returns the private key in `path`, creating it first if there is none. The file is created
 * with mode 0600 in one step (never chmod-ed after), and a key file others can read is refused.
 */
export function loadOrCreateKey(path: string): Hex {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true })
    const fd = openSync(path, 'wx', 0o600)
    try {
      writeSync(fd, `${generatePrivateKey()}\n`)
    } finally {
      closeSync(fd)
    }
  }
  const key = readOperatorKey(path)
  if (!key) throw new Error(`key file ${path} is empty`)
  return key
}
