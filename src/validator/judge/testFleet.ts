/**
 * Test support for the judge (not used by the validator itself): a small fleet of weather stations
 * in Berlin with deterministic keys, signing readings through the public SDK path (viem + signReading).
 */
import { fileURLToPath } from 'node:url'
import { latLngToCell } from 'h3-js'
import { type Address, type Hex, keccak256, toHex } from 'viem'
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { type Blueprint, loadBlueprint } from '../../blueprint/loadBlueprint.ts'
import { type Keccak256, loadKeccak256 } from '../../crypto/keccak.ts'
import { createReadingHasher, type ReadingHasher } from '../../readings/createReadingHasher.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { signReading } from '../../readings/signReading.ts'
import type { DeviceRecord } from './judgement.ts'

export const CHAIN_ID = 31337
export const DEVICE_REGISTRY: Address = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
/** A 30 s epoch, as in the environment blueprint: [EPOCH_START, EPOCH_END). */
export const EPOCH_START = 1_764_200_010n
export const EPOCH_END = EPOCH_START + 30n

export const environment: Blueprint = loadBlueprint(
  fileURLToPath(new URL('../../../blueprints/environment.yaml', import.meta.url)),
)

/** Where the test stations stand (res-8 cells); all Berlin ones share a neighbourhood at res 5, ring 1. */
export const PLACES = {
  mitte: [52.52, 13.405],
  prenzlauerBerg: [52.539, 13.424],
  kreuzberg: [52.499, 13.403],
  friedrichshain: [52.515, 13.454],
  moabit: [52.53, 13.34],
  hamburg: [53.55, 9.993],
} as const satisfies Record<string, readonly [number, number]>

export type TestStation = { name: string; account: PrivateKeyAccount; record: DeviceRecord }

/** A station with a key derived from its name, registered (as the record says) at a place. */
export function station(
  name: string,
  place: keyof typeof PLACES,
  options: { owner?: Address; status?: DeviceRecord['status']; deviceClass?: number } = {},
): TestStation {
  const account = privateKeyToAccount(keccak256(toHex(`station:${name}`)))
  const [lat, lng] = PLACES[place]
  return {
    name,
    account,
    record: {
      device: account.address,
      owner: options.owner ?? ownerAddress(`owner of ${name}`),
      deviceClass: options.deviceClass ?? 1,
      h3Cell: BigInt(`0x${latLngToCell(lat, lng, 8)}`),
      status: options.status ?? 'active',
    },
  }
}

/** A deterministic account address for a name. */
export const ownerAddress = (name: string): Address =>
  privateKeyToAccount(keccak256(toHex(`owner:${name}`))).address

/** The registry map judgeEpoch takes. */
export const registryOf = (stations: readonly TestStation[]): Map<string, DeviceRecord> =>
  new Map(stations.map((s) => [s.record.device.toLowerCase(), s.record]))

/** Signs a reading of a station: seq, seconds after EPOCH_START, values (temperature, humidity, pm25, pressure). */
export function sign(s: TestStation, seq: bigint, offset: bigint, values: bigint[]): Promise<SignedReading> {
  return signReading({
    account: s.account,
    chainId: CHAIN_ID,
    deviceRegistry: DEVICE_REGISTRY,
    seq,
    time: EPOCH_START + offset,
    values,
  })
}

/** Typical Berlin weather in fixed point: 21.50 °C, 55.20 %, 12.3 µg/m³, 1013.2 hPa. */
export const TYPICAL: readonly bigint[] = [2150n, 5520n, 123n, 10132n]

/**
 * Six readings 5 s apart over the epoch with small deterministic noise (a few hundredths of a
 * degree, a tenth of a percent…), seq 1..6: what an honest station sends.
 */
export function honestReadings(s: TestStation, base: readonly bigint[] = TYPICAL): Promise<SignedReading[]> {
  const noise = (k: number, f: number) =>
    BigInt((Number.parseInt(keccak256(toHex(`${s.name}:${k}:${f}`)).slice(2, 6), 16) % 21) - 10)
  return Promise.all(
    Array.from({ length: 6 }, (_, k) =>
      sign(
        s,
        BigInt(k + 1),
        BigInt(k * 5),
        base.map((v, f) => v + noise(k, f)),
      ),
    ),
  )
}

export type JudgeHashing = { digest: ReadingHasher; keccak: Keccak256 }

export async function loadJudgeHashing(): Promise<JudgeHashing> {
  return { digest: await createReadingHasher(CHAIN_ID, DEVICE_REGISTRY), keccak: await loadKeccak256() }
}

/**
 * A batch that breaks every rule somewhere, beside honest work: five honest stations, a liar, a
 * retired and an unregistered station, a forged, a malleable and a malformed signature, readings
 * out of range, outside the epoch, out of sequence, too fast, stuck, and duplicates.
 */
export async function mixedBatch(): Promise<{ stations: TestStation[]; readings: SignedReading[] }> {
  const owner = ownerAddress('shared owner')
  const honest = [
    station('m-h1', 'mitte', { owner }),
    station('m-h2', 'kreuzberg', { owner }),
    station('m-h3', 'prenzlauerBerg'),
    station('m-h4', 'friedrichshain'),
    station('m-h5', 'hamburg'),
  ]
  const liar = station('m-liar', 'moabit')
  const retired = station('m-retired', 'mitte', { status: 'retired' })
  const stranger = station('m-stranger', 'mitte')
  const quirky = station('m-quirky', 'kreuzberg')
  const readings = [
    ...(await Promise.all(honest.map((s) => honestReadings(s)))).flat(),
    ...(await honestReadings(liar, [3500n, 9500n, 123n, 10132n])),
    ...(await honestReadings(retired)).slice(0, 2),
    ...(await honestReadings(stranger)).slice(0, 2),
  ]
  const q = (seq: bigint, offset: bigint, values: readonly bigint[]) => sign(quirky, seq, offset, [...values])
  const quirks = [
    await q(1n, 0n, TYPICAL),
    await q(2n, 2n, TYPICAL), // rate limited
    await q(3n, 5n, TYPICAL),
    await q(4n, 4n, TYPICAL), // not increasing
    await q(5n, 10n, TYPICAL),
    await q(6n, 15n, TYPICAL), // stuck: 4th identical accepted-so-far in a row
    await q(7n, 20n, [2150n, 5520n, 10001n, 10132n]), // out of range
    await q(8n, 31n, [2151n, 5520n, 123n, 10132n]), // outside the epoch
    await q(9n, 25n, [2152n, 5520n, 123n]), // schema
  ]
  const forged = { ...(quirks[0] as SignedReading), seq: 10n, time: EPOCH_START + 26n } // signature of another content
  const malformed = { ...(quirks[2] as SignedReading), seq: 11n, signature: '0x1234' as const }
  const twinOf = await q(12n, 27n, [2155n, 5520n, 123n, 10132n])
  const sig = twinOf.signature
  const highS = (
    0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n - BigInt(`0x${sig.slice(66, 130)}`)
  )
    .toString(16)
    .padStart(64, '0')
  const malleable = {
    ...twinOf,
    signature: `${sig.slice(0, 66)}${highS}${sig.slice(130) === '1b' ? '1c' : '1b'}` as Hex,
  }
  // Two different readings for one (device, seq): the lowest signature hex is kept.
  const rival = await q(5n, 11n, [2153n, 5520n, 123n, 10132n])
  const duplicates = [
    readings[0] as SignedReading,
    { ...(readings[7] as SignedReading) },
    quirks[8] as SignedReading,
  ]
  return {
    stations: [...honest, liar, retired, stranger, quirky],
    readings: [...readings, ...quirks, forged, malformed, malleable, rival, ...duplicates],
  }
}

/** A deterministic shuffle (xorshift32), so a failing order can be replayed from its seed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0 || 1
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}
