/**
 * Free-space path loss in integers, for the witness RSSI rule: the strongest signal a witness can
 * receive from a beaconer at a distance is tx power + antenna gains − FSPL(distance, frequency);
 * anything stronger was not heard across that distance. Every quantity is in centi-units (1/100
 * dB, dBm, dBi), computed from a committed table so that every validator gets the same bits.
 */

/** round(2000 × log10(m)) for m = 0…99 (m = 0 unused): 20·log10 in centi-dB. */
const LOG_TABLE = [
  0, 0, 602, 954, 1204, 1398, 1556, 1690, 1806, 1908, 2000, 2083, 2158, 2228, 2292, 2352, 2408, 2461, 2511,
  2558, 2602, 2644, 2685, 2723, 2760, 2796, 2830, 2863, 2894, 2925, 2954, 2983, 3010, 3037, 3063, 3088, 3113,
  3136, 3160, 3182, 3204, 3226, 3246, 3267, 3287, 3306, 3326, 3344, 3362, 3380, 3398, 3415, 3432, 3449, 3465,
  3481, 3496, 3512, 3527, 3542, 3556, 3571, 3585, 3599, 3612, 3626, 3639, 3652, 3665, 3678, 3690, 3703, 3715,
  3727, 3738, 3750, 3762, 3773, 3784, 3795, 3806, 3817, 3828, 3838, 3849, 3859, 3869, 3879, 3889, 3899, 3908,
  3918, 3928, 3937, 3946, 3955, 3965, 3974, 3982, 3991,
] as const

/**
 * 20·log10(x) in centi-dB for an integer x ≥ 1, from its first two digits: never more than
 * 0.83 dB below the exact value (x = 10…11 × 10^e), never above it by more than rounding (0.005 dB).
 */
export function twentyLog10Centi(x: bigint): number {
  if (x < 1n) throw new RangeError(`log of ${x}`)
  let exponent = 0
  let m = x
  while (m >= 100n) {
    m /= 10n
    exponent++
  }
  return (LOG_TABLE[Number(m)] as number) + 2000 * exponent
}

/**
 * FSPL in centi-dB: 20·log10(d / m) + 20·log10(f / Hz) − 147.55 dB, with d in metres (≥ 1) and f in
 * kHz (20·log10(1000) = 60 dB). Errs low (by < 1.7 dB), so the RSSI rule errs in the honest
 * witness's favour.
 */
export function freeSpacePathLossCenti(distanceM: bigint, frequencyKhz: bigint): number {
  const d = distanceM < 1n ? 1n : distanceM
  return twentyLog10Centi(d) + twentyLog10Centi(frequencyKhz) + 6000 - 14755
}

/** The strongest RSSI (centi-dBm) a witness can receive from a beacon over `distanceM`. */
export function maxRssiCenti(input: {
  txPowerCentiDbm: number
  /** Beaconer's and witness's antenna gains together. */
  gainsCentiDbi: number
  distanceM: bigint
  frequencyKhz: bigint
}): number {
  return (
    input.txPowerCentiDbm + input.gainsCentiDbi - freeSpacePathLossCenti(input.distanceM, input.frequencyKhz)
  )
}
