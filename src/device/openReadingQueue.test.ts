import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { signReading } from '../readings/signReading.ts'
import { openReadingQueue } from './openReadingQueue.ts'

const account = privateKeyToAccount(generatePrivateKey())
const reading = (seq: bigint) =>
  signReading({
    account,
    chainId: 31337,
    deviceRegistry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
    seq,
    time: 100n + seq,
    values: [-1n, 2n],
  })

describe('openReadingQueue', () => {
  it('keeps readings across reopening, in order, exactly', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'queue-')), 'device.queue')
    const [r1, r2, r3] = await Promise.all([reading(1n), reading(2n), reading(3n)])
    const queue = openReadingQueue(path)
    queue.append([r1, r2])
    queue.append([r3])
    expect(openReadingQueue(path).readings()).toEqual([r1, r2, r3])
    queue.replace([r3])
    expect(openReadingQueue(path).readings()).toEqual([r3])
  })

  it('drops a torn last line (a crash mid-append) and rewrites the file, but refuses corruption elsewhere', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'queue-')), 'device.queue')
    const [r1, r2] = await Promise.all([reading(1n), reading(2n)])
    openReadingQueue(path).append([r1])
    appendFileSync(path, '{"device":"0x12')
    const reopened = openReadingQueue(path)
    expect(reopened.readings()).toEqual([r1])
    reopened.append([r2])
    expect(openReadingQueue(path).readings()).toEqual([r1, r2])

    writeFileSync(path, `not json\n${readFileSync(path, 'utf8')}`)
    expect(() => openReadingQueue(path)).toThrow(expect.objectContaining({ code: 'QUEUE_FILE_CORRUPT' }))
  })
})
