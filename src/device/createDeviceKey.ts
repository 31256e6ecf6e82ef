import { closeSync, fsyncSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import type { PrivateKeyAccount } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { ConfigError } from '../errors.ts'

export type CreateDeviceKeyReturnType = PrivateKeyAccount

/**
 * Generates a device key (secp256k1) and stores it, as `0x` + 64 hex digits, in a new file that
 * only its owner can read. The file is created with mode 0600 by the call that creates it (it is
 * never readable by others, not even for a moment), and an existing file is never overwritten:
 * a device key is the device's identity. The key itself is never logged nor put in an error.
 * @param path where to create the key file (its directory is created, mode 0700, when missing)
 * @returns the device account; its address is the device id
 * @example
 * const device = createDeviceKey('.data/device.key')
 * console.log(device.address) // the id to register on-chain
 */
export function createDeviceKey(path: string): CreateDeviceKeyReturnType {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  let fd: number
  try {
    // 'wx' fails when the path exists, so two processes can never both create the same key file
    fd = openSync(path, 'wx', 0o600)
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ConfigError(
        'KEY_FILE_EXISTS',
        `a key file already exists at ${path}; it is never overwritten`,
        {
          details: { path },
          cause,
        },
      )
    }
    throw new ConfigError('KEY_FILE_UNWRITABLE', `cannot create the key file ${path}`, {
      details: { path },
      cause,
    })
  }
  const privateKey = generatePrivateKey()
  try {
    writeSync(fd, `${privateKey}\n`)
    fsyncSync(fd)
  } catch (cause) {
    closeSync(fd)
    unlinkSync(path)
    throw new ConfigError('KEY_FILE_UNWRITABLE', `cannot write the key file ${path}`, {
      details: { path },
      cause,
    })
  }
  closeSync(fd)
  return privateKeyToAccount(privateKey)
}
