import { type Account, type Address, type Hex, hashTypedData, recoverAddress } from 'viem'
import { ChainError } from '../errors.ts'
import { depinDomain, type EpochReport, epochReportTypes } from './typedData.ts'

export type SignEpochReportParameters = {
  account: Account
  chainId: number
  epochManager: Address
  report: EpochReport
}

export type SignedReport = { signer: Address; signature: Hex }

/** A validator's EIP-712 signature of an epoch report, bound to one chain and EpochManager. */
export async function signEpochReport({
  account,
  chainId,
  epochManager,
  report,
}: SignEpochReportParameters): Promise<SignedReport> {
  if (!account.signTypedData) {
    throw new ChainError('ACCOUNT_CANNOT_SIGN', `account ${account.address} cannot sign typed data`)
  }
  const signature = await account.signTypedData({
    domain: depinDomain(chainId, epochManager),
    types: epochReportTypes,
    primaryType: 'EpochReport',
    message: report,
  })
  return { signer: account.address, signature }
}

/** The digest of an epoch report, as EpochManager.hashReport computes it. */
export function hashEpochReport(chainId: number, epochManager: Address, report: EpochReport): Hex {
  return hashTypedData({
    domain: depinDomain(chainId, epochManager),
    types: epochReportTypes,
    primaryType: 'EpochReport',
    message: report,
  })
}

/** Recovers the signer of a report signature (for checking peers' signatures before submitting). */
export async function recoverReportSigner(
  chainId: number,
  epochManager: Address,
  report: EpochReport,
  signature: Hex,
): Promise<Address> {
  return recoverAddress({ hash: hashEpochReport(chainId, epochManager, report), signature })
}

/**
 * Orders signatures as EpochManager.submitReport requires: by signer address, strictly ascending;
 * a signer given twice is kept once.
 */
export function orderSignatures(signed: readonly SignedReport[]): Hex[] {
  const bySigner = new Map<string, SignedReport>()
  for (const s of signed) bySigner.set(s.signer.toLowerCase(), s)
  return [...bySigner.entries()]
    .sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0))
    .map(([, s]) => s.signature)
}
