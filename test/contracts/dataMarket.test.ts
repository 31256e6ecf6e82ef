import { type Address, decodeEventLog, type Hex, keccak256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dataMarketAbi } from '../../src/chain/generated/contracts.ts'
import { loadKeccak256 } from '../../src/crypto/keccak.ts'
import {
  checkVoucherSignature,
  extendServed,
  hashVoucher,
  type MarketDomain,
  NOTHING_SERVED,
  redeemArgs,
  type SignedVoucher,
  signVoucher,
  type Voucher,
} from '../../src/market/voucher.ts'
import { expectRevert } from '../helpers/expectRevert.ts'
import { revertAfterEachTest } from '../helpers/revertAfterEachTest.ts'
import { startTestNetwork, type TestNetwork, testParameters, WAD } from '../helpers/testNetwork.ts'

type Actor = Awaited<ReturnType<TestNetwork['actor']>>

let net: TestNetwork
let consumer: Actor
let provider: Actor
let stranger: Actor
let domain: MarketDomain
const digests = (label: string, n: number) =>
  Array.from({ length: n }, (_, i) => keccak256(toHex(`${label}${i}`)))

beforeAll(async () => {
  net = await startTestNetwork()
  ;[consumer, provider, stranger] = [await net.actor(), await net.actor(), await net.actor()]
  domain = { chainId: net.chainId, market: net.deployment.contracts.dataMarket }
  await net.send(net.contracts.dataMarket.write.addProvider([provider.address, 'http://127.0.0.1:1/']))
  for (const who of [consumer, stranger]) {
    await net.send(net.contracts.depinToken.write.transfer([who.address, 100n * WAD]))
    await net.send(
      who.contracts.depinToken.write.approve([net.deployment.contracts.dataMarket, 2n ** 256n - 1n]),
      who.clients,
    )
  }
})
afterAll(async () => net?.stop())
revertAfterEachTest(() => net)

const market = (who: Actor) => who.contracts.dataMarket
const accountOf = async (address: Address) => {
  const [balance, withdrawal, dueAt] = await net.contracts.dataMarket.read.accountOf([address])
  return { balance, withdrawal, dueAt }
}

async function voucher(amount: bigint, served = NOTHING_SERVED, count = 0n, to = provider.address) {
  const v: Voucher = {
    consumer: consumer.address,
    provider: to,
    cumulativeAmount: amount,
    served,
    servedCount: count,
  }
  return signVoucher(consumer.account, domain, v)
}

const redeem = (v: SignedVoucher, by: Actor = provider) => market(by).write.redeem(redeemArgs(v))

describe('DataMarket: deposits', () => {
  it('takes deposits, for oneself and for another consumer', async () => {
    await net.send(market(consumer).write.deposit([10n * WAD]), consumer.clients)
    await net.send(market(stranger).write.depositFor([consumer.address, 5n * WAD]), stranger.clients)
    expect((await accountOf(consumer.address)).balance).toBe(15n * WAD)
    expect(await net.contracts.depinToken.read.balanceOf([net.deployment.contracts.dataMarket])).toBe(
      15n * WAD,
    )
    await expectRevert(market(consumer).write.deposit([0n]), 'MarketZeroAmount')
  })
})

describe('DataMarket.redeem', () => {
  it('redeems the increment of each cumulative voucher into the fee pool, and nothing twice', async () => {
    const keccak = await loadKeccak256()
    await net.send(market(consumer).write.deposit([10n * WAD]), consumer.clients)
    const served1 = extendServed(keccak, NOTHING_SERVED, digests('a', 3))
    const first = await voucher(3n * WAD, served1, 3n)
    expect(checkVoucherSignature(keccak, domain, first)).toEqual({ type: 'valid' })
    const receipt = await net.send(redeem(first), provider.clients)
    const log = receipt.logs
      .filter((l) => l.address.toLowerCase() === domain.market.toLowerCase())
      .map((l) => decodeEventLog({ abi: dataMarketAbi, ...l }))
      .find((e) => e.eventName === 'Redeemed')
    expect(log?.args).toEqual({
      consumer: consumer.address,
      provider: provider.address,
      amount: 3n * WAD,
      cumulativeAmount: 3n * WAD,
      served: served1,
      servedCount: 3n,
    })
    // the same voucher again, and an older smaller one, take nothing
    await expectRevert(redeem(first), 'MarketNothingToRedeem')
    const served2 = extendServed(keccak, served1, digests('b', 2))
    const second = await voucher(5n * WAD, served2, 5n)
    await net.send(redeem(second), provider.clients)
    await expectRevert(redeem(first), 'MarketNothingToRedeem')
    await expectRevert(redeem(second), 'MarketNothingToRedeem')
    expect((await accountOf(consumer.address)).balance).toBe(5n * WAD)
    expect(await net.contracts.dataMarket.read.redeemedOf([consumer.address, provider.address])).toEqual([
      5n * WAD,
      5n,
    ])
    expect(await net.contracts.rewardDistributor.read.feePool()).toBe(5n * WAD)
    expect(await net.contracts.rewardDistributor.read.totalFeesReceived()).toBe(5n * WAD)
  })

  it('refuses forged, other-chain, other-market, other-provider and malleable vouchers', async () => {
    await net.send(market(consumer).write.deposit([10n * WAD]), consumer.clients)
    const honest = await voucher(WAD)
    const forged = {
      ...honest,
      signature: (
        await stranger.account.signTypedData?.({
          domain: { name: 'depin', version: '1', chainId: net.chainId, verifyingContract: domain.market },
          types: { Voucher: [{ name: 'consumer', type: 'address' }] },
          primaryType: 'Voucher',
          message: { consumer: consumer.address },
        })
      )?.toString() as Hex,
    }
    const otherChain = await signVoucher(consumer.account, { ...domain, chainId: net.chainId + 1 }, honest)
    const otherMarket = await signVoucher(consumer.account, { ...domain, market: stranger.address }, honest)
    const tampered = { ...honest, cumulativeAmount: 2n * WAD }
    // s' = n − s with v flipped: the same signer, a second encoding, which OpenZeppelin refuses
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
    const s = BigInt(`0x${honest.signature.slice(66, 130)}`)
    const v = Number.parseInt(honest.signature.slice(130), 16)
    const malleable = {
      ...honest,
      signature:
        `${honest.signature.slice(0, 66)}${(n - s).toString(16).padStart(64, '0')}${(v === 27 ? 28 : 27).toString(16)}` as Hex,
    }
    const keccak = await loadKeccak256()
    for (const bad of [forged, otherChain, otherMarket, tampered, malleable]) {
      expect(checkVoucherSignature(keccak, domain, bad).type).toBe('invalid')
      const args = await expectRevert(redeem(bad), 'MarketInvalidVoucherSignature')
      expect(args).toEqual([consumer.address, provider.address])
    }
    // a voucher for this provider is no good to another listed provider
    await net.send(net.contracts.dataMarket.write.addProvider([stranger.address, 'http://127.0.0.1:2/']))
    await expectRevert(redeem(honest, stranger), 'MarketInvalidVoucherSignature')
    expect((await accountOf(consumer.address)).balance).toBe(10n * WAD)
    expect(await net.contracts.rewardDistributor.read.feePool()).toBe(0n)
  })

  it('refuses unlisted providers, amounts beyond the deposit and served counts that go back', async () => {
    await net.send(market(consumer).write.deposit([2n * WAD]), consumer.clients)
    const unlisted = await voucher(WAD, NOTHING_SERVED, 0n, stranger.address)
    await expectRevert(redeem(unlisted, stranger), 'MarketUnknownProvider')
    const args = await expectRevert(redeem(await voucher(3n * WAD)), 'MarketInsufficientDeposit')
    expect(args).toEqual([consumer.address, 3n * WAD, 2n * WAD])
    await net.send(redeem(await voucher(WAD, keccak256('0x01'), 4n)), provider.clients)
    await expectRevert(redeem(await voucher(2n * WAD, keccak256('0x02'), 3n)), 'MarketServedCountDecreased')
    // a provider taken off the list redeems nothing more
    await net.send(market(provider).write.removeProvider([provider.address]), provider.clients)
    await expectRevert(redeem(await voucher(2n * WAD, keccak256('0x02'), 5n)), 'MarketUnknownProvider')
    expect((await accountOf(consumer.address)).balance).toBe(WAD)
  })
})

describe('DataMarket: withdrawals', () => {
  const delay = testParameters.market.withdrawalDelay

  it('returns the unspent deposit only after the delay; redemptions within it still pay', async () => {
    await net.send(market(consumer).write.deposit([10n * WAD]), consumer.clients)
    const held = await voucher(4n * WAD)
    await net.send(market(consumer).write.requestWithdrawal([10n * WAD]), consumer.clients)
    const { dueAt } = await accountOf(consumer.address)
    await expectRevert(market(consumer).write.withdraw(), 'MarketWithdrawalNotDue')
    await net.warp(delay - 10n)
    await net.send(redeem(held), provider.clients) // within the delay
    await net.warp(20n)
    expect((await net.admin.publicClient.getBlock()).timestamp).toBeGreaterThanOrEqual(dueAt)
    const before = await net.contracts.depinToken.read.balanceOf([consumer.address])
    await net.send(market(consumer).write.withdraw(), consumer.clients)
    // it asked for 10 but 4 were redeemed meanwhile: it gets the 6 left
    expect((await net.contracts.depinToken.read.balanceOf([consumer.address])) - before).toBe(6n * WAD)
    expect(await accountOf(consumer.address)).toEqual({ balance: 0n, withdrawal: 0n, dueAt: 0n })
    // after it, the provider gets nothing more
    await expectRevert(redeem(await voucher(5n * WAD)), 'MarketInsufficientDeposit')
    await expectRevert(market(consumer).write.withdraw(), 'MarketNoWithdrawal')
  })

  it('withdraws part, leaving the rest redeemable', async () => {
    await net.send(market(consumer).write.deposit([10n * WAD]), consumer.clients)
    await net.send(market(consumer).write.requestWithdrawal([3n * WAD]), consumer.clients)
    await net.warp(delay)
    await net.send(market(consumer).write.withdraw(), consumer.clients)
    expect((await accountOf(consumer.address)).balance).toBe(7n * WAD)
    await net.send(redeem(await voucher(7n * WAD)), provider.clients)
    expect((await accountOf(consumer.address)).balance).toBe(0n)
  })
})

describe('DataMarket: providers', () => {
  it('is listed by governance; a provider changes its URL or leaves; strangers cannot', async () => {
    expect(await net.contracts.dataMarket.read.providers()).toEqual([provider.address])
    expect(await net.contracts.dataMarket.read.providerUrl([provider.address])).toBe('http://127.0.0.1:1/')
    await expectRevert(
      market(stranger).write.addProvider([stranger.address, 'http://x/']),
      'OwnableUnauthorizedAccount',
    )
    await expectRevert(
      market(stranger).write.setProviderUrl([provider.address, 'http://evil/']),
      'MarketNotProviderOrOwner',
    )
    await expectRevert(
      net.contracts.dataMarket.write.addProvider([provider.address, 'http://y/']),
      'MarketProviderExists',
    )
    await expectRevert(
      net.contracts.dataMarket.write.addProvider([stranger.address, '']),
      'MarketInvalidProviderUrl',
    )
    await net.send(
      market(provider).write.setProviderUrl([provider.address, 'http://127.0.0.1:3/']),
      provider.clients,
    )
    expect(await net.contracts.dataMarket.read.providerUrl([provider.address])).toBe('http://127.0.0.1:3/')
    await net.send(market(provider).write.removeProvider([provider.address]), provider.clients)
    expect(await net.contracts.dataMarket.read.providers()).toEqual([])
    expect(await net.contracts.dataMarket.read.isProvider([provider.address])).toBe(false)
  })
})

describe('voucher digest', () => {
  it('is the one the contract checks (a fixed vector of the running served hash, too)', async () => {
    const keccak = await loadKeccak256()
    // keccak256(0x00…00 ‖ d0), then keccak256(that ‖ d1): pinned so that the fold never changes
    const [d0, d1] = digests('x', 2) as [Hex, Hex]
    const once = keccak256(`${NOTHING_SERVED}${d0.slice(2)}` as Hex)
    expect(extendServed(keccak, NOTHING_SERVED, [d0, d1])).toBe(keccak256(`${once}${d1.slice(2)}` as Hex))
    expect(extendServed(keccak, NOTHING_SERVED, [])).toBe(NOTHING_SERVED)
    // the contract accepts exactly the digest hashVoucher computes: a signature over it redeems
    const v: Voucher = {
      consumer: consumer.address,
      provider: provider.address,
      cumulativeAmount: WAD,
      served: once,
      servedCount: 1n,
    }
    const raw = await consumer.account.sign?.({ hash: hashVoucher(domain, v) })
    await net.send(market(consumer).write.deposit([WAD]), consumer.clients)
    await net.send(redeem({ ...v, signature: raw as Hex }), provider.clients)
    expect((await accountOf(consumer.address)).balance).toBe(0n)
  })
})
