import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { afterEach, describe, expect, it } from 'vitest'
import { openSlashingProtection } from './slashingProtection.ts'

const network = {
  chainId: 31337,
  epochManager: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  validator: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
} as const
const digest = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex
const signature = (n: number) => `0x${n.toString(16).padStart(130, '0')}` as Hex

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const freshPath = () => {
  const dir = mkdtempSync(join(tmpdir(), 'depin-protection-'))
  dirs.push(dir)
  return join(dir, 'validator.db')
}

describe('openSlashingProtection', () => {
  it('records the digest before signing, and after a restart never signs another digest for that epoch', async () => {
    const path = freshPath()
    const first = openSlashingProtection(path, network)
    const signed = await first.signOnce('report', 7n, digest(1), '{"a":1}', async () => {
      // the record is on disk before the signature exists: another connection sees it
      const other = openSlashingProtection(path, network)
      expect(other.record('report', 7n)).toMatchObject({ digest: digest(1), signature: null })
      other.close()
      return signature(1)
    })
    expect(signed).toEqual({ type: 'signed', signature: signature(1), fresh: true })
    first.close()

    // "restarted": another digest for epoch 7 is refused; the same one is answered from the record
    const again = openSlashingProtection(path, network)
    let calls = 0
    const sign = async () => {
      calls++
      return signature(2)
    }
    const refused = await again.signOnce('report', 7n, digest(2), '{}', sign)
    expect(refused).toMatchObject({
      type: 'refused',
      code: 'DIGEST_CONFLICT',
      recorded: { digest: digest(1) },
    })
    expect(await again.signOnce('report', 7n, digest(1), '{}', sign)).toEqual({
      type: 'signed',
      signature: signature(1),
      fresh: false,
    })
    // batch sets are recorded apart from reports; other epochs are free
    expect((await again.signOnce('batchSet', 7n, digest(3), '{}', sign)).type).toBe('signed')
    expect((await again.signOnce('report', 8n, digest(4), '{}', sign)).type).toBe('signed')
    expect(calls).toBe(2)
    expect(again.recordsSince(8n).map((r) => [r.kind, r.epoch])).toEqual([['report', 8n]])
    again.close()
  })

  it('a crash between recording and signing leaves a record that only the same digest may sign', async () => {
    const path = freshPath()
    const first = openSlashingProtection(path, network)
    await expect(
      first.signOnce('report', 3n, digest(9), '{}', async () => {
        throw new Error('killed before the signature')
      }),
    ).rejects.toThrow('killed')
    first.close()
    const again = openSlashingProtection(path, network)
    expect((await again.signOnce('report', 3n, digest(8), '{}', async () => signature(8))).type).toBe(
      'refused',
    )
    expect(await again.signOnce('report', 3n, digest(9), '{}', async () => signature(9))).toMatchObject({
      type: 'signed',
      signature: signature(9),
    })
    again.close()
  })

  it('refuses a record file of another network or validator', () => {
    const path = freshPath()
    openSlashingProtection(path, network).close()
    expect(() => openSlashingProtection(path, { ...network, chainId: 1 })).toThrow(
      expect.objectContaining({ code: 'SLASHING_RECORD_MISMATCH' }),
    )
    expect(() =>
      openSlashingProtection(path, { ...network, validator: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' }),
    ).toThrow(expect.objectContaining({ code: 'SLASHING_RECORD_MISMATCH' }))
  })

  it('moves with the validator: export, import elsewhere, and nothing conflicting or older is signed there', async () => {
    const old = openSlashingProtection(freshPath(), network)
    for (const epoch of [10n, 11n, 12n])
      await old.signOnce('report', epoch, digest(Number(epoch)), '{}', async () => signature(1))
    await old.signOnce('batchSet', 12n, digest(112), '{}', async () => signature(2))
    const file = JSON.parse(JSON.stringify(old.exportInterchange()))
    old.close()
    expect(file.metadata).toMatchObject({
      interchangeFormat: 'depin-slashing-protection',
      version: 1,
      chainId: 31337,
    })

    const moved = openSlashingProtection(freshPath(), network)
    // the new machine had already signed epoch 11 differently (both exist now): kept out and counted
    await moved.signOnce('report', 11n, digest(999), '{}', async () => signature(3))
    expect(moved.importInterchange(file)).toEqual({
      imported: 3,
      alreadyKnown: 0,
      conflicts: 1,
      watermark: 12n,
    })
    const sign = async () => signature(4)
    expect((await moved.signOnce('report', 12n, digest(5), '{}', sign)).type).toBe('refused')
    expect((await moved.signOnce('report', 12n, digest(12), '{}', sign)).type).toBe('signed')
    // an epoch at or below the watermark without a record: its history elsewhere is unknown
    expect(await moved.signOnce('report', 9n, digest(9), '{}', sign)).toMatchObject({
      type: 'refused',
      code: 'BELOW_WATERMARK',
    })
    expect((await moved.signOnce('report', 13n, digest(13), '{}', sign)).type).toBe('signed')

    expect(() => moved.importInterchange({ ...file, metadata: { ...file.metadata, chainId: 5 } })).toThrow(
      expect.objectContaining({ code: 'SLASHING_INTERCHANGE_OTHER_NETWORK' }),
    )
    expect(() =>
      moved.importInterchange({ ...file, data: [{ ...file.data[0], validator: network.epochManager }] }),
    ).toThrow(expect.objectContaining({ code: 'SLASHING_INTERCHANGE_OTHER_VALIDATOR' }))
    expect(() => moved.importInterchange({ data: 'nope' })).toThrow(
      expect.objectContaining({ code: 'SLASHING_INTERCHANGE_INVALID' }),
    )
    moved.close()
  })
})
