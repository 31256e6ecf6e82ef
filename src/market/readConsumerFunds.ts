import type { Address, PublicClient } from 'viem'
import { dataMarketAbi } from '../chain/generated/contracts.ts'
import type { ConsumerFunds } from './createPaywall.ts'

/** Reads a consumer's deposit, announced withdrawal and what `provider` redeemed, from the DataMarket. */
export function readConsumerFunds(publicClient: PublicClient, market: Address, provider: Address) {
  return async (consumer: Address): Promise<ConsumerFunds> => {
    const [[balance, withdrawal], [redeemed]] = await Promise.all([
      publicClient.readContract({
        address: market,
        abi: dataMarketAbi,
        functionName: 'accountOf',
        args: [consumer],
      }),
      publicClient.readContract({
        address: market,
        abi: dataMarketAbi,
        functionName: 'redeemedOf',
        args: [consumer, provider],
      }),
    ])
    return { balance, withdrawal, redeemed }
  }
}
