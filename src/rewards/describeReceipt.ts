import { formatUnits } from 'viem'
import type { Receipt } from './receiptsTree.ts'

/** What a receipt's numbers are named by: its use case's reasons and units, the token's symbol. */
export type ReceiptNames = {
  /** The epoch's reject reasons, rejected[i] counting reasons[i]. */
  reasons: readonly string[]
  /** The use case's unit names, units[j] measuring unitNames[j]. */
  unitNames: readonly string[]
  symbol: string
}

/** The receipt's rejections by reason, the reasons with none left out. */
export function rejectedByReason(receipt: Receipt, names: ReceiptNames): Record<string, number> {
  const out: Record<string, number> = {}
  receipt.rejected.forEach((n, i) => {
    if (n > 0) out[names.reasons[i] ?? `code ${i + 1}`] = n
  })
  return out
}

/** The receipt's measures by unit name. */
export function unitsByName(receipt: Receipt, names: ReceiptNames): Record<string, string> {
  return Object.fromEntries(receipt.units.map((v, j) => [names.unitNames[j] ?? `unit ${j}`, v.toString()]))
}

const count = (n: number, one: string, many = `${one}s`) =>
  `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`

/**
 * A receipt in plain words, e.g. "Epoch 12: 10 readings submitted, 9 accepted, 1 rejected
 * (RATE_TOO_HIGH 1). qualityBps 9000, uptimeBps 9000. Weight 81,000 of 1,620,000 (5.00 % of the
 * devices' 450 DPIN): 22.5 DPIN to 0xOwner…".
 */
export function describeReceipt(receipt: Receipt, names: ReceiptNames): string {
  const rejected = receipt.submitted - receipt.accepted
  const reasons = Object.entries(rejectedByReason(receipt, names))
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ')
  const units = Object.entries(unitsByName(receipt, names))
    .map(([name, v]) => `${name} ${v}`)
    .join(', ')
  const shareBps = receipt.totalWeight === 0n ? 0n : (receipt.weight * 10_000n) / receipt.totalWeight
  const share = `${shareBps / 100n}.${(shareBps % 100n).toString().padStart(2, '0')} %`
  return [
    `Epoch ${receipt.epoch}: ${count(receipt.submitted, 'reading')} submitted, ${receipt.accepted.toLocaleString('en-US')} accepted, ${rejected.toLocaleString('en-US')} rejected${reasons ? ` (${reasons})` : ''}.`,
    units ? ` ${units}.` : '',
    ` Weight ${receipt.weight.toLocaleString('en-US')} of ${receipt.totalWeight.toLocaleString('en-US')} (${share} of the devices' ${formatUnits(receipt.devicePool, 18)} ${names.symbol}):`,
    ` ${formatUnits(receipt.reward, 18)} ${names.symbol} to ${receipt.owner}.`,
  ].join('')
}
