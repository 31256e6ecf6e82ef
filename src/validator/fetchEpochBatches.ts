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
 * and returns their union in canonical order, identical readings once. Where gateways disagree on
 * a (device, seq) — different contents or signatures — only the authentic ones are kept when
 * there are any (`isAuthentic`: the signature recovers to the device), so that nobody able to add
 * to a batch can push out a device's real reading with a forged twin; the judge breaks any tie
 * left. Pending while any gateway has not sealed the epoch yet. A batch whose bytes do not match
 * its hash throws.
 */
export async function fetchEpochBatches(
  keccak: Keccak256,
  gatewayUrls: readonly string[],
  epoch: bigint,
  isAuthentic: (reading: SignedReading) => boolean = () => true,
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
  const bySignature = (a: SignedReading, b: SignedReading) => {
    const [x, y] = [a.signature.toLowerCase(), b.signature.toLowerCase()]
    return x < y ? -1 : x > y ? 1 : 0
  }
  all.sort((a, b) => compareReadings(a, b) || bySignature(a, b))
  const unique = all.filter((r, i) => {
    const previous = all[i - 1]
    return !previous || compareReadings(previous, r) !== 0 || bySignature(previous, r) !== 0
  })
  const readings: SignedReading[] = []
  for (let i = 0; i < unique.length; ) {
    let j = i + 1
    while (j < unique.length && compareReadings(unique[i] as SignedReading, unique[j] as SignedReading) === 0)
      j++
    const twins = unique.slice(i, j)
    const authentic = twins.length > 1 ? twins.filter(isAuthentic) : twins
    readings.push(...(authentic.length > 0 ? authentic : twins))
    i = j
  }
  return { type: 'ready', readings, batchHashes: batchHashes.sort() }
}
