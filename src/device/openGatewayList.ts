import { type Address, createPublicClient, getAddress, http, type PublicClient } from 'viem'
import { deviceRegistryAbi } from '../chain/generated/contracts.ts'
import { ConfigError } from '../errors.ts'

/** Whether an address is one of the network's gateways, as far as a device can tell. */
export type GatewayStanding = 'listed' | 'unlisted' | 'unavailable'

/**
 * The gateways whose signed verdicts a device believes: the DeviceRegistry's gateway list read
 * over RPC, or a fixed list for a device without RPC access.
 */
export type GatewayList = {
  /**
   * `listed` when `gateway` is on the list; `unlisted` when it is not; `unavailable` when the
   * list could never be read (no RPC answer yet). An address not in the cached list makes it read
   * the list again first, at most once per `minRefreshIntervalMs`.
   */
  standing(gateway: Address): Promise<GatewayStanding>
  /** How many times the list was read over RPC (0 for a fixed list). */
  reads(): number
}

export type OpenGatewayListParameters =
  /** A fixed list: a device without RPC access trusts exactly these gateways (their operator addresses). */
  | { addresses: readonly Address[] }
  | {
      /** The chain's JSON-RPC endpoint (or `publicClient`). */
      rpcUrl?: string
      publicClient?: Pick<PublicClient, 'readContract'>
      /** The DeviceRegistry, which keeps the gateway list. */
      deviceRegistry: Address
      /**
       * Least milliseconds between two reads of the list (default 10 000): a flood of verdicts
       * signed by unknown keys costs at most one RPC call per interval.
       */
      minRefreshIntervalMs?: number
      /** Milliseconds after which the cached list is read again before use (default 600 000), so a removed gateway stops counting. */
      maxAgeMs?: number
    }

/**
 * The gateways a device believes, for its verdict checks. From the chain: the DeviceRegistry's
 * `gateways()` read once at first use and cached; read again when a verdict comes signed by an
 * address the cache does not list (a gateway listed since), at most once per
 * `minRefreshIntervalMs`, and before use once older than `maxAgeMs`. A failed read keeps the
 * previous list. Or, without RPC access, a fixed list of addresses (a new gateway then counts
 * only once it is configured).
 * @example
 * const gateways = openGatewayList({ rpcUrl: 'http://127.0.0.1:8545', deviceRegistry })
 * const offline = openGatewayList({ addresses: ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8'] })
 */
export function openGatewayList(parameters: OpenGatewayListParameters): GatewayList {
  if ('addresses' in parameters) {
    const listed = new Set(parameters.addresses.map((a) => getAddress(a).toLowerCase()))
    return {
      standing: async (gateway) => (listed.has(gateway.toLowerCase()) ? 'listed' : 'unlisted'),
      reads: () => 0,
    }
  }
  const { deviceRegistry, minRefreshIntervalMs = 10_000, maxAgeMs = 600_000 } = parameters
  const client =
    parameters.publicClient ??
    (parameters.rpcUrl !== undefined
      ? createPublicClient({ transport: http(parameters.rpcUrl, { retryCount: 1, timeout: 10_000 }) })
      : undefined)
  if (!client) {
    throw new ConfigError(
      'GATEWAY_LIST_SOURCE_MISSING',
      'the gateway list needs an rpcUrl, a publicClient or addresses',
    )
  }
  let listed: Set<string> | undefined
  let readAt = 0 // when the last successful read began
  let triedAt = Number.NEGATIVE_INFINITY // when the last read, successful or not, began
  let reads = 0
  let reading: Promise<void> | undefined

  /** One read at a time; concurrent callers share it. */
  const refresh = () => {
    reading ??= (async () => {
      const started = Date.now()
      triedAt = started
      reads++
      try {
        const [ids] = await client.readContract({
          address: deviceRegistry,
          abi: deviceRegistryAbi,
          functionName: 'gateways',
        })
        listed = new Set(ids.map((id) => id.toLowerCase()))
        readAt = started
      } catch {
        // the previous list stands; a device without one says `unavailable` until a read works
      } finally {
        reading = undefined
      }
    })()
    return reading
  }
  const mayRead = () => Date.now() - triedAt >= minRefreshIntervalMs

  return {
    async standing(gateway) {
      const address = gateway.toLowerCase()
      if (reading) await reading
      const stale = !listed || Date.now() - readAt >= maxAgeMs
      if (stale && mayRead()) await refresh()
      if (listed?.has(address)) return 'listed'
      if (!stale && mayRead()) await refresh() // a gateway listed since the last read?
      if (!listed) return 'unavailable'
      return listed.has(address) ? 'listed' : 'unlisted'
    },
    reads: () => reads,
  }
}
