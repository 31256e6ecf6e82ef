import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DepinError } from '../errors.ts'
import { createDeviceKey } from './createDeviceKey.ts'
import { loadDeviceKey } from './loadDeviceKey.ts'

const tempDir = () => mkdtempSync(join(tmpdir(), 'device-key-'))

function errorOf(run: () => unknown): DepinError {
  try {
    run()
  } catch (error) {
    return error as DepinError
  }
  throw new Error('expected an error')
}

describe('device keys', () => {
  it('creates the key file with mode 0600 and loads the same account back', () => {
    const path = join(tempDir(), 'nested', 'device.key')
    const created = createDeviceKey(path)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readFileSync(path, 'utf8')).toMatch(/^0x[0-9a-f]{64}\n$/)
    expect(loadDeviceKey(path).address).toBe(created.address)
  })

  it('refuses a key file that group or others can read, without quoting the key', () => {
    const path = join(tempDir(), 'device.key')
    createDeviceKey(path)
    const key = readFileSync(path, 'utf8').trim()
    chmodSync(path, 0o644)
    const error = errorOf(() => loadDeviceKey(path))
    expect(error.code).toBe('KEY_FILE_EXPOSED')
    expect(error.name).toBe('ConfigError')
    expect(error.message).toMatch(/mode 0644.*chmod 600/)
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(key.slice(2))
    chmodSync(path, 0o640)
    expect(errorOf(() => loadDeviceKey(path)).code).toBe('KEY_FILE_EXPOSED')
  })

  it('never overwrites an existing key file', () => {
    const path = join(tempDir(), 'device.key')
    const first = createDeviceKey(path)
    const before = readFileSync(path, 'utf8')
    expect(errorOf(() => createDeviceKey(path)).code).toBe('KEY_FILE_EXISTS')
    expect(readFileSync(path, 'utf8')).toBe(before)
    expect(loadDeviceKey(path).address).toBe(first.address)

    const other = join(tempDir(), 'other.key')
    writeFileSync(other, 'not a key', { mode: 0o600 })
    expect(errorOf(() => createDeviceKey(other)).code).toBe('KEY_FILE_EXISTS')
    expect(readFileSync(other, 'utf8')).toBe('not a key')
  })

  it('names a missing or malformed key file without echoing its content', () => {
    const dir = tempDir()
    expect(errorOf(() => loadDeviceKey(join(dir, 'missing.key'))).code).toBe('KEY_FILE_NOT_FOUND')
    const bad = join(dir, 'bad.key')
    writeFileSync(bad, '0x1234secret', { mode: 0o600 })
    const error = errorOf(() => loadDeviceKey(bad))
    expect(error.code).toBe('KEY_INVALID')
    expect(error.message).not.toContain('secret')
    const zero = join(dir, 'zero.key')
    writeFileSync(zero, `0x${'0'.repeat(64)}`, { mode: 0o600 })
    expect(errorOf(() => loadDeviceKey(zero)).code).toBe('KEY_INVALID')
  })
})
