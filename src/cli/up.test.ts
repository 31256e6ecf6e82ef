import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)

describe('depin up', () => {
  it('refuses a fleet too small for its faults, or too many validators, before it starts anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'depin-up-'))
    try {
      const dataDir = join(dir, 'data')
      const failed = await run(process.execPath, [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'up',
        '--stations',
        '5',
        '--data-dir',
        dataDir,
      ]).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      )
      expect(failed?.code).toBe(1)
      expect(failed?.stderr).toContain('FAULTS_INVALID: --faults asks for 6 faulty stations of 5')
      expect(existsSync(dataDir)).toBe(false)
      const tooMany = await run(process.execPath, [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'up',
        '--validators',
        '40',
        '--data-dir',
        dataDir,
      ]).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      )
      expect(tooMany?.stderr).toContain('VALIDATORS_INVALID: --validators 40 is not an integer from 1 to 31')
      expect(existsSync(dataDir)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
