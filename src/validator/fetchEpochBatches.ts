import type { Hex } from 'viem'
import type { Keccak256 } from '../crypto/keccak.ts'
import { DepinError } from '../errors.ts'
import { compareReadings, decodeBatch } from '../gateway/batchFormat.ts'
import type { SignedReading } from '../readings/reading.ts'

export type FetchEpochBatchesReturnType =
  | { type: 'ready'; readings: SignedReading[]; batchHashes: Hex[] }
  | { type: 'pending'; missing: string[] }

/**
 * Fetches an epoch's sealed batch from every gateway, checks each against its content address,
 * and returns their union deduplicated by (device, seq) in canonical order. Pending while any
 * gateway has not sealed the epoch yet. A batch whose bytes do not match its hash throws.
 */
export async function fetchEpochBatches(
  keccak: Keccak256,
  gatewayUrls: readonly string[],
  epoch: bigint,
): Promise<FetchEpochBatchesReturnType> {
  const missing: string[] = []
  const all: SignedReading[] = []
  const batchHashes: Hex[] = []
  for (const url of gatewayUrls) {
    let response: Response
    try {
      response = await fetch(`${url}/v1/batches/${epoch}`)
    } catch {
      missing.push(url)
      continue
    }
    if (response.status === 404) {
      missing.push(url)
      continue
    }
    if (!response.ok)
      throw new DepinError('BATCH_FETCH_FAILED', `${url} answered ${response.status} for epoch ${epoch}`)
    const hash = response.headers.get('x-batch-hash') as Hex | null
    if (!hash) throw new DepinError('BATCH_INVALID', `${url} sent epoch ${epoch}'s batch without its hash`)
    const batch = decodeBatch(keccak, new Uint8Array(await response.arrayBuffer()), hash)
    if (batch.epoch !== epoch)
      throw new DepinError('BATCH_INVALID', `${url} sent epoch ${batch.epoch} for ${epoch}`)
    batchHashes.push(batch.hash)
    all.push(...batch.readings)
  }
  if (missing.length > 0) return { type: 'pending', missing }
  all.sort(compareReadings)
  const readings = all.filter((r, i) => {
    const previous = all[i - 1]
    return !previous || compareReadings(previous, r) !== 0 || previous.signature !== r.signature
  })
  return { type: 'ready', readings, batchHashes: batchHashes.sort() }
}
