/**
 * The DataMarket under random sequences, on a real anvil: consumers deposit, sign cumulative
 * vouchers for two providers, announce and take withdrawals (before and after the delay);
 * providers redeem the latest voucher, an older one, or one whose amount was raised after it was
 * signed. A model of what should happen runs beside the chain, and after every step: each
 * consumer paid exactly what providers redeemed from it (deposited − withdrawn − deposit left),
 * never more than the largest amount it signed for a provider, the fee pool received exactly the
 * sum, and the token balance of the market is the sum of the deposits. At the end the fees are
 * split (splitFees, over readings served by random devices): Σ credited = Σ paid, exactly.
 */
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBlueprint } from '../../src/blueprint/loadBlueprint.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import { splitFees } from '../../src/market/splitFees.ts'
import {
  extendServed,
  type MarketDomain,
  NOTHING_SERVED,
  redeemArgs,
  type SignedVoucher,
  signVoucher,
} from '../../src/market/voucher.ts'
import { expectRevert } from '../helpers/expectRevert.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
import { startTestNetwork, type TestNetwork, WAD } from '../helpers/testNetwork.ts'

type Actor = Awaited<ReturnType<TestNetwork['actor']>>

const SEEDS = 8
const STEPS = 24
const DELAY = 3_600n

let net: TestNetwork
let consumers: Actor[]
let providers: Actor[]
let domain: MarketDomain
const keccak = await loadKeccak256()
const { split } = loadBlueprint('blueprints/environment.yaml').market as NonNullable<
  ReturnType<typeof loadBlueprint>['market']
>

beforeAll(async () => {
  net = await startTestNetwork()
  consumers = [await net.actor(), await net.actor(), await net.actor()]
  providers = [await net.actor(), await net.actor()]
  domain = { chainId: net.chainId, market: net.deployment.contracts.dataMarket }
  for (const p of providers)
    await net.send(net.contracts.dataMarket.write.addProvider([p.address, 'http://127.0.0.1:1/']))
  for (const c of consumers) {
    await net.send(net.contracts.depinToken.write.transfer([c.address, 1_000n * WAD]))
    await net.send(
      c.contracts.depinToken.write.approve([net.deployment.contracts.dataMarket, 2n ** 256n - 1n]),
      c.clients,
    )
  }
}, 120_000)
afterAll(async () => net?.stop())
revertAfterEachTest(() => net)

/** xorshift32: a fixed sequence per seed. */
function random(seed: number) {
  let x = seed
  return (n: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

/** What the sequences did, over all seeds: the test is vacuous if some of it never happened. */
const tally = { redeemed: 0, nothingToRedeem: 0, insufficient: 0, raised: 0, withdrawn: 0, notDue: 0 }

type Pair = { vouchers: SignedVoucher[]; redeemed: bigint; servedCount: bigint; served: Hex; digests: Hex[] }

describe('DataMarket under random consumers, providers, vouchers and withdrawals', () => {
  it.each(Array.from({ length: SEEDS }, (_, i) => i + 1))(
    'seed %i: each consumer pays exactly what was redeemed, never more than it signed',
    async (seed) => {
      const r = random(seed * 7_919)
      const model = consumers.map(() => ({ deposited: 0n, withdrawn: 0n, balance: 0n, withdrawal: 0n }))
      const pairs = consumers.map(() =>
        providers.map(
          (): Pair => ({ vouchers: [], redeemed: 0n, servedCount: 0n, served: NOTHING_SERVED, digests: [] }),
        ),
      )
      /** Each redemption's amount and the digests it paid for (for the split at the end). */
      const redemptions: { provider: Address; amount: bigint; digests: Hex[] }[] = []

      const redeemAs = async (ci: number, pi: number, v: SignedVoucher) => {
        const pair = pairs[ci]?.[pi] as Pair
        const m = model[ci] as (typeof model)[number]
        const p = providers[pi] as Actor
        const write = p.contracts.dataMarket.write.redeem(redeemArgs(v))
        if (v.cumulativeAmount <= pair.redeemed) {
          tally.nothingToRedeem++
          return expectRevert(write, 'MarketNothingToRedeem')
        }
        const amount = v.cumulativeAmount - pair.redeemed
        if (amount > m.balance) {
          tally.insufficient++
          return expectRevert(write, 'MarketInsufficientDeposit')
        }
        await net.send(write, p.clients)
        tally.redeemed++
        redemptions.push({
          provider: p.address,
          amount,
          digests: pair.digests.slice(Number(pair.servedCount), Number(v.servedCount)),
        })
        pair.redeemed = v.cumulativeAmount
        pair.servedCount = v.servedCount
        m.balance -= amount
      }

      for (let step = 0; step < STEPS; step++) {
        const ci = r(consumers.length)
        const pi = r(providers.length)
        const c = consumers[ci] as Actor
        const m = model[ci] as (typeof model)[number]
        const pair = pairs[ci]?.[pi] as Pair
        const latest = pair.vouchers.at(-1)
        switch (r(7)) {
          case 0: {
            const amount = BigInt(1 + r(20)) * 10n ** 16n
            await net.send(c.contracts.dataMarket.write.deposit([amount]), c.clients)
            m.deposited += amount
            m.balance += amount
            break
          }
          case 1:
          case 2: {
            // the consumer received more and signs for it: a larger cumulative amount
            const fresh = Array.from({ length: 1 + r(4) }, (_, i) => keccak256(toHex(`${seed}:${step}:${i}`)))
            pair.digests.push(...fresh)
            pair.served = extendServed(keccak, pair.served, fresh)
            const signed = await signVoucher(c.account, domain, {
              consumer: c.address,
              provider: (providers[pi] as Actor).address,
              cumulativeAmount: (latest?.cumulativeAmount ?? 0n) + BigInt(1 + r(30)) * 10n ** 15n,
              served: pair.served,
              servedCount: BigInt(pair.digests.length),
            })
            pair.vouchers.push(signed)
            break
          }
          case 3:
            if (latest) await redeemAs(ci, pi, latest)
            break
          case 4: {
            // an older voucher, the latest replayed, or the latest with its amount raised after signing
            if (!latest) break
            const which = r(3)
            if (which === 0) await redeemAs(ci, pi, pair.vouchers[r(pair.vouchers.length)] as SignedVoucher)
            else if (which === 1) {
              // the latest twice in a row: the second is a replay
              await redeemAs(ci, pi, latest)
              await redeemAs(ci, pi, latest)
            } else {
              const raised = { ...latest, cumulativeAmount: latest.cumulativeAmount + 1n }
              tally.raised++
              await expectRevert(
                (providers[pi] as Actor).contracts.dataMarket.write.redeem(redeemArgs(raised)),
                'MarketInvalidVoucherSignature',
              )
            }
            break
          }
          case 5: {
            if (m.balance === 0n) break
            const amount = 1n + (m.balance * BigInt(r(100))) / 100n
            await net.send(c.contracts.dataMarket.write.requestWithdrawal([amount]), c.clients)
            m.withdrawal = amount
            if (r(2) === 0) {
              // taken at once: not due before the delay, whatever else happened
              await expectRevert(c.contracts.dataMarket.write.withdraw(), 'MarketWithdrawalNotDue')
              tally.notDue++
            }
            break
          }
          case 6: {
            if (m.withdrawal === 0n) {
              await expectRevert(c.contracts.dataMarket.write.withdraw(), 'MarketNoWithdrawal')
              break
            }
            if (r(3) === 0) {
              await expectRevert(c.contracts.dataMarket.write.withdraw(), 'MarketWithdrawalNotDue')
              tally.notDue++
              break
            }
            await net.warp(DELAY + 1n)
            // the announced amount, or what is left of the deposit after redemptions meanwhile
            let amount = m.withdrawal
            if (m.balance < amount) amount = m.balance
            await net.send(c.contracts.dataMarket.write.withdraw(), c.clients)
            m.withdrawn += amount
            m.balance -= amount
            tally.withdrawn++
            m.withdrawal = 0n
            break
          }
        }

        // the invariants, read from the chain after every step
        let redeemedInAll = 0n
        for (const [i, who] of consumers.entries()) {
          const [balance, withdrawal] = await net.contracts.dataMarket.read.accountOf([who.address])
          const mi = model[i] as (typeof model)[number]
          expect(balance).toBe(mi.balance)
          expect(withdrawal).toBe(mi.withdrawal)
          let paid = 0n
          for (const [j, p] of providers.entries()) {
            const [redeemed] = await net.contracts.dataMarket.read.redeemedOf([who.address, p.address])
            const pj = pairs[i]?.[j] as Pair
            expect(redeemed).toBe(pj.redeemed)
            let mostSigned = 0n
            for (const v of pj.vouchers) if (v.cumulativeAmount > mostSigned) mostSigned = v.cumulativeAmount
            expect(redeemed).toBeLessThanOrEqual(mostSigned)
            paid += redeemed
          }
          // what left the consumer's deposit for providers is exactly what they redeemed
          expect(mi.deposited - mi.withdrawn - balance).toBe(paid)
          redeemedInAll += paid
        }
        expect(await net.contracts.rewardDistributor.read.totalFeesReceived()).toBe(redeemedInAll)
        const held = model.reduce((sum, x) => sum + x.balance, 0n)
        expect(await net.contracts.depinToken.read.balanceOf([net.deployment.contracts.dataMarket])).toBe(
          held,
        )
      }

      // the split of what was redeemed, over readings served by random devices: exact
      const devices = Array.from(
        { length: 5 },
        (_, i) => `0x${(0xd0 + i).toString(16).padStart(40, '0')}` as Address,
      )
      const deviceOf = new Map<Hex, Address>()
      const toSplit = redemptions.map((x) => {
        const proven = x.digests.filter(() => r(4) !== 0)
        for (const d of proven) deviceOf.set(d, devices[r(devices.length)] as Address)
        return {
          provider: x.provider,
          amount: x.amount,
          paidReadings: BigInt(x.digests.length),
          provenDevices: proven.map((d) => deviceOf.get(d) as Address),
        }
      })
      const treasury = await net.contracts.dataMarket.read.treasury()
      const credits = splitFees(
        toSplit,
        split,
        (d) => `0x${'0e'.repeat(19)}${d.slice(-2)}` as Address,
        treasury,
      )
      const paidInAll = redemptions.reduce((sum, x) => sum + x.amount, 0n)
      expect(await net.contracts.rewardDistributor.read.totalFeesReceived()).toBe(paidInAll)
      expect([...credits.credits.values()].reduce((a, b) => a + b, 0n)).toBe(paidInAll)
      const served = new Set(toSplit.flatMap((x) => x.provenDevices.map((d) => d.toLowerCase())))
      for (const device of credits.byDevice.keys()) expect(served.has(device)).toBe(true)
    },
    120_000,
  )

  it('did all of it: redemptions, refusals of each kind, withdrawals before and after the delay', () => {
    for (const [what, n] of Object.entries(tally)) expect(n, what).toBeGreaterThan(0)
  })
})
