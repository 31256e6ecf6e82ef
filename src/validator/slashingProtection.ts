/**
 * Slashing protection: what this validator signed, kept durably before it signs, so that it never
 * signs two different digests for one epoch — not after a crash, a restart, a re-judging with other
 * deadlines, nor after an operator moved it to another machine. Ethereum's validator clients
 * learned this the hard way (EIP-3076); this is the same idea for depin's two signed items:
 *
 * - `report`: the EpochReport of an epoch (two different ones are slashable on-chain);
 * - `batchSet`: the BatchSet it announces for an epoch (not slashable, but a second, different
 *   one would make its peers count its batches differently).
 *
 * Rules: the record of (kind, epoch) is written and fsynced (SQLite, synchronous FULL) before the
 * signature is made; a digest other than the recorded one is refused; after an import, nothing is
 * signed for an epoch at or below the imported watermark unless a record says exactly that digest.
 * The signature is recorded too once made, so a restarted validator re-publishes what it signed.
 */

import type { Address, Hex } from 'viem'
import { z } from 'zod'
import { DepinError } from '../errors.ts'
import { openSqlite } from '../protocol/sqlDatabase.ts'
import { addressHex, bytes32, decimal } from './wireSchemas.ts'

/** Epochs are stored as SQLite's signed 64-bit integers (no real network comes near). */
const INT64_MAX = (1n << 63n) - 1n

export type SignedItemKind = 'report' | 'batchSet'

/** One signing record: the digest an epoch's item was (or is about to be) signed over. */
export type SigningRecord = {
  kind: SignedItemKind
  epoch: bigint
  digest: Hex
  /** The signature, once made (a crash between recording and signing leaves none). */
  signature: Hex | null
  /** What was signed, for re-publishing and re-judging (JSON; empty for imported records). */
  body: string
}

export type SignOnceResult =
  | { type: 'signed'; signature: Hex; fresh: boolean }
  | { type: 'refused'; code: 'DIGEST_CONFLICT' | 'BELOW_WATERMARK'; recorded: SigningRecord | undefined }

/** The interchange file an operator moves with a validator (in the spirit of EIP-3076). */
export const slashingInterchangeSchema = z.object({
  metadata: z.object({
    interchangeFormat: z.literal('depin-slashing-protection'),
    version: z.literal(1),
    chainId: z.number().int().positive(),
    epochManager: addressHex,
  }),
  data: z.array(
    z.object({
      validator: addressHex,
      signedReports: z.array(z.object({ epoch: decimal(INT64_MAX, 'stored epoch'), digest: bytes32 })),
      signedBatchSets: z.array(z.object({ epoch: decimal(INT64_MAX, 'stored epoch'), digest: bytes32 })),
    }),
  ),
})
export type SlashingInterchange = z.input<typeof slashingInterchangeSchema>

export type SlashingProtection = ReturnType<typeof openSlashingProtection>

/**
 * Opens the signing record in a validator's SQLite file (a table of its own; the file may be the
 * validator's store). `network` ties the record to one chain and EpochManager: a file recorded for
 * another network is refused (its epochs are another network's).
 */
export function openSlashingProtection(
  path: string,
  network: { chainId: number; epochManager: Address; validator: Address },
) {
  const db = openSqlite(path) // WAL, every commit fsynced before it returns (synchronous FULL)
  db.defaultSafeIntegers(true)
  db.exec(`
    CREATE TABLE IF NOT EXISTS signing_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS signing_records (
      kind TEXT NOT NULL CHECK (kind IN ('report', 'batchSet')),
      epoch INTEGER NOT NULL,
      digest TEXT NOT NULL,
      signature TEXT,
      body TEXT NOT NULL,
      PRIMARY KEY (kind, epoch)
    ) WITHOUT ROWID;
  `)
  const readMeta = db.prepare<[string], { value: string }>('SELECT value FROM signing_meta WHERE key = ?')
  const writeMeta = db.prepare<[string, string]>(
    'INSERT INTO signing_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  )
  const identity = `${network.chainId}:${network.epochManager.toLowerCase()}:${network.validator.toLowerCase()}`
  const recordedFor = readMeta.get('network')?.value
  if (recordedFor === undefined) writeMeta.run('network', identity)
  else if (recordedFor !== identity) {
    db.close()
    throw new DepinError(
      'SLASHING_RECORD_MISMATCH',
      `the signing record in ${path} belongs to ${recordedFor} (chain:epochManager:validator), not ${identity}`,
      { details: { path, recordedFor, expected: identity } },
    )
  }
  type Row = { kind: SignedItemKind; epoch: bigint; digest: Hex; signature: Hex | null; body: string }
  const select = db.prepare<[string, bigint], Row>(
    'SELECT kind, epoch, digest, signature, body FROM signing_records WHERE kind = ? AND epoch = ?',
  )
  const insert = db.prepare<[string, bigint, string, string]>(
    'INSERT INTO signing_records (kind, epoch, digest, signature, body) VALUES (?, ?, ?, NULL, ?)',
  )
  const setSignature = db.prepare<[string, string, bigint, string]>(
    'UPDATE signing_records SET signature = ? WHERE kind = ? AND epoch = ? AND digest = ?',
  )
  const since = db.prepare<[bigint], Row>(
    'SELECT kind, epoch, digest, signature, body FROM signing_records WHERE epoch >= ? ORDER BY epoch, kind',
  )
  const toRecord = (row: Row | undefined): SigningRecord | undefined =>
    row && {
      kind: row.kind,
      epoch: BigInt(row.epoch),
      digest: row.digest,
      signature: row.signature,
      body: row.body,
    }
  const watermark = (): bigint | undefined => {
    const value = readMeta.get('import_watermark')?.value
    return value === undefined ? undefined : BigInt(value)
  }

  return {
    /** The record of an epoch's item, if any. */
    record(kind: SignedItemKind, epoch: bigint): SigningRecord | undefined {
      return toRecord(select.get(kind, epoch))
    },
    /** Records from `epoch` on, oldest first (what a restarted validator re-publishes). */
    recordsSince(epoch: bigint): SigningRecord[] {
      return since.all(epoch < 0n ? 0n : epoch).map((row) => toRecord(row) as SigningRecord)
    },
    /**
     * Signs `digest` for (kind, epoch) only if no other digest was ever recorded for it: records
     * it durably first, then calls `sign`, then records the signature. Signing the recorded digest
     * again is safe (same digest, and ECDSA here is deterministic: the same signature).
     */
    async signOnce(
      kind: SignedItemKind,
      epoch: bigint,
      digest: Hex,
      body: string,
      sign: () => Promise<Hex>,
    ): Promise<SignOnceResult> {
      const normalized = digest.toLowerCase() as Hex
      const recorded = toRecord(select.get(kind, epoch))
      if (recorded && recorded.digest !== normalized)
        return { type: 'refused', code: 'DIGEST_CONFLICT', recorded }
      if (recorded?.signature) return { type: 'signed', signature: recorded.signature, fresh: false }
      if (!recorded) {
        const mark = watermark()
        if (mark !== undefined && epoch <= mark)
          return { type: 'refused', code: 'BELOW_WATERMARK', recorded: undefined }
        insert.run(kind, epoch, normalized, body) // fsynced: the record exists before the signature
      }
      const signature = (await sign()).toLowerCase() as Hex
      setSignature.run(signature, kind, epoch, normalized)
      return { type: 'signed', signature, fresh: true }
    },
    /** The interchange file of every record (digests only: enough to refuse a conflicting signature). */
    exportInterchange(): SlashingInterchange {
      const rows = since.all(0n).map((row) => toRecord(row) as SigningRecord)
      const of = (kind: SignedItemKind) =>
        rows.filter((r) => r.kind === kind).map((r) => ({ epoch: r.epoch.toString(), digest: r.digest }))
      return {
        metadata: {
          interchangeFormat: 'depin-slashing-protection',
          version: 1,
          chainId: network.chainId,
          epochManager: network.epochManager,
        },
        data: [
          { validator: network.validator, signedReports: of('report'), signedBatchSets: of('batchSet') },
        ],
      }
    },
    /**
     * Takes the records of an interchange file (a validator moved here from another machine):
     * each epoch recorded there may only ever be signed with the same digest, and nothing is
     * signed at or below the newest epoch it names without such a record (its history may be
     * incomplete). Refuses a file of another network or validator; a digest that conflicts with
     * a local record is kept out (both were signed already) and counted. Atomic.
     */
    importInterchange(file: unknown): {
      imported: number
      alreadyKnown: number
      conflicts: number
      watermark: bigint | undefined
    } {
      const parsed = slashingInterchangeSchema.safeParse(file)
      if (!parsed.success)
        throw new DepinError(
          'SLASHING_INTERCHANGE_INVALID',
          'not a depin slashing-protection interchange file',
          {
            details: { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) },
          },
        )
      const { metadata, data } = parsed.data
      if (
        metadata.chainId !== network.chainId ||
        metadata.epochManager.toLowerCase() !== network.epochManager.toLowerCase()
      )
        throw new DepinError(
          'SLASHING_INTERCHANGE_OTHER_NETWORK',
          `the file is for chain ${metadata.chainId}, EpochManager ${metadata.epochManager}; this validator runs on chain ${network.chainId}, ${network.epochManager}`,
        )
      const entries = data.filter((d) => d.validator.toLowerCase() === network.validator.toLowerCase())
      if (entries.length === 0)
        throw new DepinError(
          'SLASHING_INTERCHANGE_OTHER_VALIDATOR',
          `the file holds no records of validator ${network.validator}`,
          { details: { validators: data.map((d) => d.validator) } },
        )
      const counts = { imported: 0, alreadyKnown: 0, conflicts: 0 }
      let newest = watermark()
      db.transaction(() => {
        for (const entry of entries) {
          const items = [
            ...entry.signedReports.map((r) => ({ kind: 'report' as const, ...r })),
            ...entry.signedBatchSets.map((r) => ({ kind: 'batchSet' as const, ...r })),
          ]
          for (const item of items) {
            const digest = item.digest.toLowerCase() as Hex
            const local = toRecord(select.get(item.kind, item.epoch))
            if (newest === undefined || item.epoch > newest) newest = item.epoch
            if (!local) {
              insert.run(item.kind, item.epoch, digest, '')
              counts.imported++
            } else if (local.digest === digest) counts.alreadyKnown++
            else counts.conflicts++
          }
        }
        if (newest !== undefined) writeMeta.run('import_watermark', newest.toString())
      }).immediate()
      return { ...counts, watermark: newest }
    },
    close(): void {
      db.close()
    },
  }
}
