import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { type Address, type Hex, hashTypedData, type PublicClient } from 'viem'
import { epochManagerAbi } from '../chain/generated/contracts.ts'
import { depinDomain } from '../chain/typedData.ts'
import type { SignedReadingJson } from '../readings/reading.ts'
import {
  READING_KIND,
  type RecordKind,
  recordMessage,
  recordTypes,
  recordValuesProblem,
} from '../readings/recordKinds.ts'

/** A reading as the API serves it (`/v1/readings`, `/v1/aggregate`, `/v1/stream`), with its proof. */
export type ProvenReadingJson = { epoch: string; reading: SignedReadingJson; proof: Hex[] }

export type VerifyProvenReadingsParameters = {
  readings: readonly ProvenReadingJson[]
  publicClient: PublicClient
  chainId: number
  deviceRegistry: Address
  epochManager: Address
  /** The use case's record kinds (default the environment's Reading): a record names its kind. */
  kinds?: readonly RecordKind[]
  /** Called with each reading that holds (its index) and the digest recomputed from it. */
  onVerified?: (index: number, digest: Hex) => void
}

/**
 * Checks readings from an API without trusting it: each one's EIP-712 digest is recomputed
 * from the reading (viem), and its proof must lead, as OpenZeppelin's MerkleProof has it, to the
 * readings root the EpochManager holds for its epoch (read from the chain, once per epoch).
 * @returns the readings that fail, with why; empty when every one holds
 */
export async function verifyProvenReadings({
  readings,
  publicClient,
  chainId,
  deviceRegistry,
  epochManager,
  kinds = [READING_KIND],
  onVerified,
}: VerifyProvenReadingsParameters): Promise<{ reading: ProvenReadingJson; why: string }[]> {
  const roots = new Map<string, Promise<Hex>>()
  const rootOf = (epoch: string) => {
    if (!roots.has(epoch)) {
      roots.set(
        epoch,
        publicClient.readContract({
          address: epochManager,
          abi: epochManagerAbi,
          functionName: 'readingsRootOf',
          args: [BigInt(epoch)],
        }),
      )
    }
    return roots.get(epoch) as Promise<Hex>
  }
  const domain = depinDomain(chainId, deviceRegistry)
  const failed: { reading: ProvenReadingJson; why: string }[] = []
  for (const [index, proven] of readings.entries()) {
    const { device, seq, time, values } = proven.reading
    const kind =
      proven.reading.kind === undefined ? kinds[0] : kinds.find((k) => k.name === proven.reading.kind)
    if (!kind) {
      failed.push({ reading: proven, why: `${proven.reading.kind} is not a record kind of this network` })
      continue
    }
    let record: { device: Address; seq: bigint; time: bigint; values: bigint[] }
    try {
      record = { device, seq: BigInt(seq), time: BigInt(time), values: values.map(BigInt) }
    } catch {
      failed.push({ reading: proven, why: 'its numbers are not integers' })
      continue
    }
    const problem = recordValuesProblem(kind, record.values)
    if (problem) {
      failed.push({ reading: proven, why: problem })
      continue
    }
    const digest = hashTypedData({
      domain,
      types: recordTypes(kind),
      primaryType: kind.name,
      message: recordMessage(kind, record),
    })
    const root = await rootOf(proven.epoch)
    if (/^0x0{64}$/.test(root))
      failed.push({ reading: proven, why: `epoch ${proven.epoch} has no root on-chain` })
    else if (!StandardMerkleTree.verify(root, ['bytes32'], [digest], proven.proof)) {
      failed.push({ reading: proven, why: `not in the readings root of epoch ${proven.epoch}` })
    } else onVerified?.(index, digest)
  }
  return failed
}
