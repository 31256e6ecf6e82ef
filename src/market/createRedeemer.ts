/**
 * A provider's redemptions: at each round, every consumer's latest voucher that adds to what the
 * DataMarket already paid this provider is redeemed, one transaction at a time. A redemption moves
 * the increment from the consumer's deposit to the fee pool; the validators then credit it by the
 * blueprint's split, over the readings the provider's served bundle shows (createPaywall's
 * `/v1/market/served/:epoch`).
 */
import type { Address, Hex } from 'viem'
import type { ChainClients } from '../chain/createChainClients.ts'
import { dataMarketAbi } from '../chain/generated/contracts.ts'
import { sendTransaction } from '../chain/sendTransaction.ts'
import type { Context } from '../protocol/context.ts'
import type { ProviderStore } from './providerStore.ts'
import { redeemArgs } from './voucher.ts'

export type CreateRedeemerOptions = {
  store: ProviderStore
  /** The provider's clients: its wallet is the address on the DataMarket's list. */
  clients: ChainClients
  market: Address
  /** Milliseconds between rounds (default 30,000). */
  intervalMs?: number
  /** Each redemption that landed. */
  onRedeemed?: (event: { consumer: Address; amount: bigint; cumulativeAmount: bigint; txHash: Hex }) => void
  /** What went wrong in a round (a redemption refused, the chain unreachable); default: context.report. */
  onError?: (code: string, error: unknown, fields?: Record<string, unknown>) => void
  context?: Context
}

export function createRedeemer(options: CreateRedeemerOptions) {
  const { store, market } = options
  const { publicClient, walletClient, account } = options.clients
  if (!walletClient || !account) throw new Error('a redeemer needs the provider key')
  const wallet = walletClient
  const provider = account.address
  let timer: NodeJS.Timeout | undefined
  let running: Promise<number> | undefined
  const report =
    options.onError ??
    ((code: string, error: unknown, fields?: Record<string, unknown>) =>
      options.context?.report(code, error, fields))

  /** Redeems every voucher that adds something; returns how many landed. */
  async function redeemDue(): Promise<number> {
    let landed = 0
    for (const consumer of store.consumers()) {
      const voucher = store.channel(consumer).voucher
      if (!voucher) continue
      const [redeemed] = await publicClient.readContract({
        address: market,
        abi: dataMarketAbi,
        functionName: 'redeemedOf',
        args: [voucher.consumer, provider],
      })
      if (voucher.cumulativeAmount <= redeemed) continue
      try {
        const receipt = await sendTransaction(
          publicClient,
          wallet.writeContract({
            address: market,
            abi: dataMarketAbi,
            functionName: 'redeem',
            args: redeemArgs(voucher),
            account,
            chain: options.clients.chain,
          }),
        )
        landed++
        options.onRedeemed?.({
          consumer: voucher.consumer,
          amount: voucher.cumulativeAmount - redeemed,
          cumulativeAmount: voucher.cumulativeAmount,
          txHash: receipt.transactionHash,
        })
      } catch (error) {
        // a consumer whose deposit no longer covers the voucher: the others are redeemed still
        report('REDEEM_FAILED', error, { consumer: voucher.consumer })
      }
    }
    return landed
  }

  const round = () => {
    running ??= redeemDue().finally(() => {
      running = undefined
    })
    return running
  }

  return {
    redeemDue: round,
    start() {
      timer = setInterval(() => {
        round().catch((error: unknown) => report('REDEEM_ROUND_FAILED', error))
      }, options.intervalMs ?? 30_000)
    },
    async stop() {
      if (timer) clearInterval(timer)
      await running?.catch(() => {})
    },
  }
}

export type Redeemer = ReturnType<typeof createRedeemer>
