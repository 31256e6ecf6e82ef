import { execFile } from 'node:child_process'
import { Writable } from 'node:stream'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DepinError } from '../errors.ts'
import { createContext } from './context.ts'

/** A context writing into an array of parsed lines. */
function capture() {
  const lines: Record<string, unknown>[] = []
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  let exitCode: number | undefined
  const context = createContext({
    role: 'test',
    destination,
    exit: ((code: number) => {
      exitCode = code
      return undefined as never
    }) as (code: number) => never,
  })
  return { context, lines, exited: () => exitCode }
}

describe('createContext', () => {
  it('writes structured lines: role, ISO time, event, bigints as decimal strings, errors with their code', () => {
    const { context, lines } = capture()
    context.log('epoch_judged', { epoch: 12n, nested: { total: 10n ** 21n }, list: [1n] })
    context.report('FALLBACK', new DepinError('PEER_REFUSED', 'the peer said no'), { peer: 'x' })
    context.report('FALLBACK', new Error('plain'))
    expect(lines[0]).toMatchObject({
      level: 'info',
      role: 'test',
      event: 'epoch_judged',
      epoch: '12',
      nested: { total: '1000000000000000000000' },
      list: ['1'],
    })
    expect(new Date(lines[0]?.time as string).toISOString()).toBe(lines[0]?.time)
    expect(lines[1]).toMatchObject({
      level: 'error',
      event: 'error',
      code: 'PEER_REFUSED',
      message: 'the peer said no',
      peer: 'x',
    })
    expect(lines[2]).toMatchObject({ code: 'FALLBACK', message: 'plain' })
  })

  it('guards a timer body: what it throws or rejects with is reported, never escapes', async () => {
    const { context, lines } = capture()
    context.guard('TICK_FAILED', () => {
      throw new Error('sync')
    })
    context.guard('TICK_FAILED', async () => {
      throw new DepinError('STORE_FAILED', 'async')
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect(lines.map((l) => [l.code, l.message])).toEqual([
      ['TICK_FAILED', 'sync'],
      ['STORE_FAILED', 'async'],
    ])
  })

  it('fail logs fatal, aborts the shutdown signal and exits 1', () => {
    const { context, lines, exited } = capture()
    context.fail('INDEXER_HALTED', new DepinError('INDEXER_REORG', 'the chain reorganized'))
    expect(lines[0]).toMatchObject({ level: 'fatal', event: 'fatal', code: 'INDEXER_REORG' })
    expect(context.shutdown.aborted).toBe(true)
    expect(exited()).toBe(1)
  })

  it('a process with the handlers installed stops loudly on an unhandled rejection', async () => {
    const script = `
      import { createContext, installProcessHandlers } from './src/protocol/context.ts'
      installProcessHandlers(createContext({ role: 'test' }))
      setTimeout(() => Promise.reject(new Error('nobody awaited this')), 10)
      setTimeout(() => console.log('still alive'), 2000)
    `
    const result = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ]).catch((error: { code: number; stdout: string }) => error)
    expect(result).toMatchObject({ code: 1 })
    const line = JSON.parse((result as { stdout: string }).stdout.trim().split('\n')[0] as string)
    expect(line).toMatchObject({
      level: 'fatal',
      code: 'UNHANDLED_REJECTION',
      message: 'nobody awaited this',
    })
    expect((result as { stdout: string }).stdout).not.toContain('still alive')
  })
})
