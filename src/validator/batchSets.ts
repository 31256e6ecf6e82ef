/**
 * Agreement on an epoch's input before anyone signs its report. Each validator fetches the
 * epoch's sealed batch from every gateway on the registry's list and announces, signed, the
 * content addresses it holds: a batch set. A batch counts when at least f + 1 active validators
 * announced it (f = ⌊(n − 1) / 3⌋, the Byzantine validators tolerated), so at least one honest
 * validator holds it and serves it; every validator fetches the batches it lacks from a peer or a
 * gateway by content address and judges the union of the batches that count.
 */
import { type Account, type Address, type Hex, hashTypedData, recoverAddress } from 'viem'
import { z } from 'zod'
import { batchSetTypes, depinDomain } from '../chain/typedData.ts'
import { signatureShapeProblem } from '../crypto/signatureShape.ts'
import { ChainError, DepinError } from '../errors.ts'
import { addressHex, bytes32, decimal, signatureHex, UINT64_MAX } from './wireSchemas.ts'

/** One validator's signed list of the batches it holds for an epoch. */
export type BatchSetAnnouncement = {
  epoch: bigint
  /** Content addresses, lower-case, distinct, ascending. */
  batches: Hex[]
  signer: Address
  signature: Hex
}

/** Batches one announcement may list: every listed gateway's, and as many again of other versions. */
export const MAX_BATCHES_PER_SET = 64

/** Content addresses in canonical form: lower-case, distinct, ascending. */
export function canonicalBatchList(batches: readonly Hex[]): Hex[] {
  return [...new Set(batches.map((b) => b.toLowerCase() as Hex))].sort()
}

/** The EIP-712 digest of a batch set in a network's EpochManager domain. */
export function hashBatchSet(chainId: number, epochManager: Address, epoch: bigint, batches: readonly Hex[]) {
  return hashTypedData({
    domain: depinDomain(chainId, epochManager),
    types: batchSetTypes,
    primaryType: 'BatchSet',
    message: { epoch, batches: canonicalBatchList(batches) },
  })
}

/** Signs the batch set a validator holds for an epoch. */
export async function signBatchSet(parameters: {
  account: Account
  chainId: number
  epochManager: Address
  epoch: bigint
  batches: readonly Hex[]
}): Promise<BatchSetAnnouncement> {
  const { account, chainId, epochManager, epoch } = parameters
  if (!account.signTypedData)
    throw new ChainError('ACCOUNT_CANNOT_SIGN', `account ${account.address} cannot sign typed data`)
  const batches = canonicalBatchList(parameters.batches)
  const signature = await account.signTypedData({
    domain: depinDomain(chainId, epochManager),
    types: batchSetTypes,
    primaryType: 'BatchSet',
    message: { epoch, batches },
  })
  return { epoch, batches, signer: account.address, signature }
}

/** Checks an announcement's signature (65 bytes, v 27/28, low s, made by its signer); throws BATCH_SET_INVALID. */
export async function verifyBatchSet(
  chainId: number,
  epochManager: Address,
  announcement: BatchSetAnnouncement,
): Promise<BatchSetAnnouncement> {
  const invalid = (message: string) =>
    new DepinError('BATCH_SET_INVALID', message, {
      details: { epoch: announcement.epoch.toString(), signer: announcement.signer },
    })
  const batches = canonicalBatchList(announcement.batches)
  if (batches.length !== announcement.batches.length) throw invalid('the batch list repeats a batch')
  if (batches.length > MAX_BATCHES_PER_SET) throw invalid(`more than ${MAX_BATCHES_PER_SET} batches`)
  const signature = announcement.signature.toLowerCase() as Hex
  const problem = signatureShapeProblem(signature)
  if (problem) throw invalid(problem)
  const hash = hashBatchSet(chainId, epochManager, announcement.epoch, batches)
  let recovered: Address
  try {
    recovered = await recoverAddress({ hash, signature })
  } catch {
    throw invalid('the signature does not recover')
  }
  if (recovered.toLowerCase() !== announcement.signer.toLowerCase())
    throw invalid('the signature was not made by the signer')
  return { epoch: announcement.epoch, batches, signer: recovered, signature }
}

/** The JSON wire form of an announcement: the epoch as a decimal string. */
export type BatchSetJson = { epoch: string; batches: Hex[]; signer: Address; signature: Hex }

export function toBatchSetJson(announcement: BatchSetAnnouncement): BatchSetJson {
  return { ...announcement, epoch: announcement.epoch.toString() }
}

/** Parses the JSON wire form of an announcement (shape only, not the signature). */
export const batchSetJsonSchema = z.object({
  epoch: decimal(UINT64_MAX, 'uint64'),
  batches: z.array(bytes32).max(MAX_BATCHES_PER_SET),
  signer: addressHex,
  signature: signatureHex,
})

/** Byzantine validators tolerated among n: the largest f with 3f < n. */
export function faultTolerance(n: number): number {
  return n === 0 ? 0 : Math.floor((n - 1) / 3)
}

/**
 * The batches that count for an epoch: those announced by at least f + 1 distinct active
 * validators (a validator that announced twice counts once per batch it listed in either).
 * Ascending; the same for everyone who holds the same announcements.
 */
export function agreedBatches(
  announcements: readonly BatchSetAnnouncement[],
  active: readonly Address[],
): Hex[] {
  const activeSet = new Set(active.map((a) => a.toLowerCase()))
  const announcers = new Map<Hex, Set<string>>()
  for (const a of announcements) {
    const signer = a.signer.toLowerCase()
    if (!activeSet.has(signer)) continue
    for (const batch of a.batches) {
      const key = batch.toLowerCase() as Hex
      const set = announcers.get(key) ?? new Set<string>()
      set.add(signer)
      announcers.set(key, set)
    }
  }
  const threshold = faultTolerance(activeSet.size) + 1
  return [...announcers]
    .filter(([, signers]) => signers.size >= threshold)
    .map(([batch]) => batch)
    .sort()
}

/** Distinct active validators among the announcers. */
export function announcersAmong(
  announcements: readonly BatchSetAnnouncement[],
  active: readonly Address[],
): Set<string> {
  const activeSet = new Set(active.map((a) => a.toLowerCase()))
  return new Set(announcements.map((a) => a.signer.toLowerCase()).filter((s) => activeSet.has(s)))
}
