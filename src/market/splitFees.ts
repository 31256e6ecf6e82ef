/**
 * The split of redeemed fees, in integers only (validators must agree bit for bit). Each
 * redemption's amount A is split by the blueprint's basis points:
 *
 * - devices: ⌊A × deviceOwnersBps / 10000⌋ × c / n to the owner of each device with c of the
 *   n readings the redemption paid for proven (floored per device);
 * - the provider: ⌊A × providerBps / 10000⌋ × k / n, where k of the n readings are proven (a
 *   provider that cannot show what it served earns nothing for it);
 * - the protocol's treasury: the rest, so that every redemption credits exactly A in all.
 *
 * A reading is proven when it is in the readings root of the settled epoch the bundle names for
 * it. A redemption without a bundle, or with one that does not hold, counts no reading proven; a
 * redemption that paid for no reading (n = 0) goes to the treasury whole.
 */
import type { Address } from 'viem'

export type FeeSplitBps = { deviceOwnersBps: number; providerBps: number; protocolBps: number }

export type RedemptionToSplit = {
  provider: Address
  amount: bigint
  /** How many readings the redemption paid for (the voucher's served count increment). */
  paidReadings: bigint
  /** The device of each proven reading (a device may appear many times). */
  provenDevices: readonly Address[]
}

export type FeeCredits = {
  /** Amount per account (lower-case address): owners, providers, treasury. */
  credits: Map<string, bigint>
  /** Usage fees per device (lower-case address), before they reach the device's owner. */
  byDevice: Map<string, bigint>
  /** Sum of the redemptions split: exactly the sum of the credits. */
  total: bigint
}

const BPS = 10_000n

/**
 * Splits redemptions into credits.
 * @param ownerOf the owner of a device as of the crediting epoch's end (every proven device has one)
 */
export function splitFees(
  redemptions: readonly RedemptionToSplit[],
  split: FeeSplitBps,
  ownerOf: (device: string) => Address,
  treasury: Address,
): FeeCredits {
  const credits = new Map<string, bigint>()
  const byDevice = new Map<string, bigint>()
  const credit = (map: Map<string, bigint>, account: string, amount: bigint) => {
    if (amount > 0n) map.set(account, (map.get(account) ?? 0n) + amount)
  }
  let total = 0n
  for (const r of redemptions) {
    if (r.amount <= 0n) continue
    total += r.amount
    let given = 0n
    const n = r.paidReadings
    const proven = BigInt(r.provenDevices.length)
    if (n > 0n && proven > 0n) {
      if (proven > n) throw new RangeError(`${proven} readings proven of ${n} paid for`)
      const devicesPool = (r.amount * BigInt(split.deviceOwnersBps)) / BPS
      const counts = new Map<string, bigint>()
      for (const d of r.provenDevices) counts.set(d.toLowerCase(), (counts.get(d.toLowerCase()) ?? 0n) + 1n)
      // in address order: the same credits whatever order the readings came in
      for (const device of [...counts.keys()].sort()) {
        const share = (devicesPool * (counts.get(device) as bigint)) / n
        credit(byDevice, device, share)
        credit(credits, ownerOf(device).toLowerCase(), share)
        given += share
      }
      const providerShare = (((r.amount * BigInt(split.providerBps)) / BPS) * proven) / n
      credit(credits, r.provider.toLowerCase(), providerShare)
      given += providerShare
    }
    credit(credits, treasury.toLowerCase(), r.amount - given)
  }
  return { credits, byDevice, total }
}
