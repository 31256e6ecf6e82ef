import type { Address, Hex } from 'viem'
import type { EpochReport } from '../chain/typedData.ts'

/** One validator's signature over its report for an epoch. */
export type SignedEpochReport = {
  epoch: bigint
  report: EpochReport
  digest: Hex
  signer: Address
  signature: Hex
}

/**
 * How validators share their signed reports. Every validator publishes its own; the leader
 * (and anyone else) collects them and submits the report once a quorum signed the same digest.
 * Signatures are checked by whoever uses them (the contract re-checks everything anyway).
 */
export type ReportExchange = {
  publish(signed: SignedEpochReport): Promise<void>
  collect(epoch: bigint): Promise<SignedEpochReport[]>
}

/** An exchange inside one process: validators with their own keys and stores, sharing a board. */
export function createLocalReportExchange(): ReportExchange {
  const board = new Map<bigint, Map<string, SignedEpochReport>>()
  return {
    async publish(signed) {
      const byEpoch = board.get(signed.epoch) ?? new Map<string, SignedEpochReport>()
      byEpoch.set(signed.signer.toLowerCase(), signed)
      board.set(signed.epoch, byEpoch)
      for (const epoch of board.keys()) if (epoch < signed.epoch - 16n) board.delete(epoch)
    },
    async collect(epoch) {
      return [...(board.get(epoch)?.values() ?? [])]
    },
  }
}
