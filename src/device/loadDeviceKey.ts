import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import type { Hex, PrivateKeyAccount } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { ConfigError } from '../errors.ts'

export type LoadDeviceKeyReturnType = PrivateKeyAccount

/**
 * Loads a device key written by `createDeviceKey` (or any file holding `0x` + 64 hex digits).
 * Refuses, with code `KEY_FILE_EXPOSED`, a file that its group or others may read or write: a
 * key that others could read is no proof of possession. The mode is checked on the opened file,
 * so the file checked is the file read.
 * @example
 * const device = loadDeviceKey('.data/device.key')
 */
export function loadDeviceKey(path: string): LoadDeviceKeyReturnType {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT'
    throw new ConfigError(
      missing ? 'KEY_FILE_NOT_FOUND' : 'KEY_FILE_UNREADABLE',
      missing ? `no key file at ${path}` : `cannot open the key file ${path}`,
      { details: { path }, cause },
    )
  }
  let text: string
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) {
      throw new ConfigError('KEY_FILE_INVALID', `${path} is not a regular file`, { details: { path } })
    }
    const mode = stat.mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new ConfigError(
        'KEY_FILE_EXPOSED',
        `key file ${path} is accessible to group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${path}`,
        { details: { path, mode: mode.toString(8) } },
      )
    }
    text = readFileSync(fd, 'utf8').trim()
  } finally {
    closeSync(fd)
  }
  // No `cause` below: a parser's message could quote the key.
  if (!/^0x[0-9a-fA-F]{64}$/.test(text)) {
    throw new ConfigError('KEY_INVALID', `the key file ${path} does not hold 0x + 64 hex digits`, {
      details: { path },
    })
  }
  try {
    return privateKeyToAccount(text as Hex)
  } catch {
    throw new ConfigError('KEY_INVALID', `the key in ${path} is not a valid secp256k1 private key`, {
      details: { path },
    })
  }
}
