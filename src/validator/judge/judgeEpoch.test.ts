import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { bytesToHex, type Hex, hashTypedData, hexToSignature, signatureToHex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import { depinDomain, readingTypes } from '../../chain/typedData.ts'
import type { SignedReading } from '../../readings/reading.ts'
import { READING_KIND } from '../../readings/recordKinds.ts'
import { EMPTY_READINGS_ROOT } from '../../rewards/readingsTree.ts'
import { ACCEPTED, type UseCase } from '../../usecases/useCase.ts'
import { computeEpochRewards } from './computeEpochRewards.ts'
import { type JudgeEpochResult, judgeEpoch } from './judgeEpoch.ts'
import type { DeviceRecord } from './judgement.ts'
import {
  CHAIN_ID,
  DEVICE_REGISTRY,
  EPOCH_END,
  EPOCH_START,
  environment,
  honestReadings,
  type JudgeHashing,
  loadJudgeHashing,
  mixedBatch,
  ownerAddress,
  registryOf,
  shuffled,
  sign,
  station,
  type TestStation,
  TYPICAL,
} from './testFleet.ts'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
let hashing: JudgeHashing

beforeAll(async () => {
  hashing = await loadJudgeHashing()
})

function judge(readings: SignedReading[], devices: Map<string, DeviceRecord>): JudgeEpochResult {
  return judgeEpoch({
    blueprint: environment,
    epoch: 7n,
    epochStart: EPOCH_START,
    epochEnd: EPOCH_END,
    readings,
    devices,
    ...hashing,
  })
}

/** `name#seq: verdict` per judged reading, in the judge's order. */
function verdictsOf(result: JudgeEpochResult, stations: readonly TestStation[]): string[] {
  const names = new Map(stations.map((s) => [s.record.device.toLowerCase(), s.name]))
  return result.judged.map(
    (j) =>
      `${names.get(j.reading.device.toLowerCase()) ?? j.reading.device}#${j.reading.seq}: ${
        j.verdict.type === 'accepted' ? 'accepted' : j.verdict.reason
      }`,
  )
}

const rejections = (result: JudgeEpochResult) =>
  Object.fromEntries(Object.entries(result.rejectedByReason).filter(([, count]) => count > 0))

const withValues = (values: readonly bigint[], field: number, value: bigint) =>
  values.map((v, f) => (f === field ? value : v))

describe('judgeEpoch: an honest fleet', () => {
  it('accepts every reading, scores each station fully and commits to the accepted digests', async () => {
    const stations = [
      station('a', 'mitte'),
      station('b', 'kreuzberg'),
      station('c', 'moabit'),
      station('d', 'prenzlauerBerg'),
    ]
    const readings = (await Promise.all(stations.map((s) => honestReadings(s)))).flat()
    const result = judge(readings, registryOf(stations))

    expect(result.accepted).toBe(24)
    expect(rejections(result)).toEqual({})
    expect(Object.keys(result.rejectedByReason)).toHaveLength(12)
    const sorted = [...stations].sort((x, y) =>
      x.record.device.toLowerCase() < y.record.device.toLowerCase() ? -1 : 1,
    )
    expect(result.devices).toEqual(
      sorted.map((s) => ({
        device: s.record.device,
        owner: s.record.owner,
        submitted: 6,
        accepted: 6,
        rejected: new Array(12).fill(0),
        units: { qualityBps: 10_000, uptimeBps: 10_000 },
        weight: 60_000n,
      })),
    )
    // canonical order: device (lower-case hex), then seq
    const keys = result.judged.map(
      (j) => `${j.reading.device.toLowerCase()}:${j.reading.seq.toString().padStart(3, '0')}`,
    )
    expect(keys).toEqual([...keys].sort())

    // digests are the EIP-712 hashes; the root is OpenZeppelin's StandardMerkleTree over them
    const digests = result.judged.map((j) => bytesToHex(j.digest))
    result.judged.forEach((j, i) => {
      const { signature: _, ...message } = j.reading
      expect(digests[i]).toBe(
        hashTypedData({
          domain: depinDomain(CHAIN_ID, DEVICE_REGISTRY),
          types: readingTypes,
          primaryType: 'Reading',
          message,
        }),
      )
    })
    expect(result.readingsRoot).toBe(
      StandardMerkleTree.of(
        digests.map((d) => [d]),
        ['bytes32'],
      ).root,
    )
  })

  it('commits to the empty sentinel when nothing is accepted, and judges an empty batch', async () => {
    const ghost = station('ghost', 'mitte')
    const result = judge([await sign(ghost, 1n, 0n, [...TYPICAL])], new Map())
    expect(result.readingsRoot).toBe(EMPTY_READINGS_ROOT)
    expect(result.devices).toEqual([]) // an unregistered device has no owner to score
    const empty = judge([], new Map())
    expect(empty).toMatchObject({ judged: [], devices: [], accepted: 0, readingsRoot: EMPTY_READINGS_ROOT })
  })
})

describe('judgeEpoch: duplicates', () => {
  it('keeps one of identical readings and drops the rest without counting them', async () => {
    const s = station('dup', 'mitte')
    const readings = await honestReadings(s)
    const result = judge(
      [...readings, readings[2] as SignedReading, { ...(readings[4] as SignedReading) }],
      registryOf([s]),
    )
    expect(result.judged).toHaveLength(6)
    expect(result.accepted).toBe(6)
    expect(result.devices[0]).toMatchObject({ submitted: 6, accepted: 6, units: { qualityBps: 10_000 } })
  })

  it('of two different signed readings with one seq, keeps the one whose signature hex sorts lowest', async () => {
    const s = station('twice', 'mitte')
    const first = await sign(s, 1n, 0n, [...TYPICAL])
    const second = await sign(s, 1n, 1n, withValues(TYPICAL, 0, 2200n))
    const lowest = first.signature.toLowerCase() < second.signature.toLowerCase() ? first : second
    for (const batch of [
      [first, second],
      [second, first],
    ]) {
      const result = judge(batch, registryOf([s]))
      expect(result.judged.map((j) => j.reading)).toEqual([lowest])
      expect(result.devices[0]).toMatchObject({ submitted: 1, accepted: 1 })
    }
  })
})

describe('judgeEpoch: each rule, alone', () => {
  it('SIGNATURE_INVALID: signed by another key, or a valid signature over other content', async () => {
    const s = station('victim', 'mitte')
    const forger = station('forger', 'mitte')
    const [r1, r2, r3] = await honestReadings(s)
    const forged = await forger.account.signTypedData({
      domain: depinDomain(CHAIN_ID, DEVICE_REGISTRY),
      types: readingTypes,
      primaryType: 'Reading',
      message: { device: s.account.address, seq: 4n, time: EPOCH_START + 15n, values: [...TYPICAL] },
    })
    const readings = [
      r1 as SignedReading,
      { ...(r2 as SignedReading), values: withValues((r2 as SignedReading).values, 2, 999n) },
      r3 as SignedReading,
      {
        device: s.account.address,
        seq: 4n,
        time: EPOCH_START + 15n,
        values: [...TYPICAL],
        signature: forged,
      },
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'victim#1: accepted',
      'victim#2: SIGNATURE_INVALID',
      'victim#3: accepted',
      'victim#4: SIGNATURE_INVALID',
    ])
  })

  it('SIGNATURE_MALLEABLE: the high-s twin of a valid signature', async () => {
    const s = station('malleable', 'mitte')
    const [r1, r2] = await honestReadings(s)
    const sig = hexToSignature((r2 as SignedReading).signature)
    const twin = signatureToHex({
      r: sig.r,
      s: `0x${(N - BigInt(sig.s)).toString(16).padStart(64, '0')}` as Hex,
      yParity: sig.yParity === 0 ? 1 : 0,
    })
    const result = judge(
      [r1 as SignedReading, { ...(r2 as SignedReading), signature: twin }],
      registryOf([s]),
    )
    expect(verdictsOf(result, [s])).toEqual(['malleable#1: accepted', 'malleable#2: SIGNATURE_MALLEABLE'])
  })

  it('SIGNATURE_MALFORMED: bad v, wrong length, not hex, or content outside its EIP-712 types', async () => {
    const s = station('malformed', 'mitte')
    const [r1, r2, r3, r4, r5] = (await honestReadings(s)) as [
      SignedReading,
      SignedReading,
      SignedReading,
      SignedReading,
      SignedReading,
    ]
    const readings: SignedReading[] = [
      r1,
      { ...r2, signature: `${r2.signature.slice(0, 130)}1d` as Hex },
      { ...r3, signature: r3.signature.slice(0, 100) as Hex },
      { ...r4, signature: `0x${'zz'.repeat(65)}` },
      { ...r5, values: withValues(r5.values, 3, 1n << 63n) },
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'malformed#1: accepted',
      'malformed#2: SIGNATURE_MALFORMED',
      'malformed#3: SIGNATURE_MALFORMED',
      'malformed#4: SIGNATURE_MALFORMED',
      'malformed#5: SIGNATURE_MALFORMED',
    ])
  })

  it('DEVICE_UNKNOWN and DEVICE_RETIRED', async () => {
    const known = station('known', 'mitte')
    const stranger = station('stranger', 'kreuzberg')
    const retired = station('retired', 'moabit', { status: 'retired' })
    const readings = [
      ...(await honestReadings(known)).slice(0, 2),
      ...(await honestReadings(stranger)).slice(0, 2),
      ...(await honestReadings(retired)).slice(0, 2),
    ]
    const all = [known, stranger, retired]
    const result = judge(readings, registryOf([known, retired]))
    expect(verdictsOf(result, all).sort()).toEqual([
      'known#1: accepted',
      'known#2: accepted',
      'retired#1: DEVICE_RETIRED',
      'retired#2: DEVICE_RETIRED',
      'stranger#1: DEVICE_UNKNOWN',
      'stranger#2: DEVICE_UNKNOWN',
    ])
    expect(result.devices.map((d) => [d.device, d.accepted, d.weight]).sort()).toEqual(
      [
        [known.record.device, 2, 20_000n],
        [retired.record.device, 0, 0n],
      ].sort(),
    )
  })

  it('SCHEMA_MISMATCH: too few or too many values, or a class the blueprint does not define', async () => {
    const s = station('schema', 'mitte')
    const odd = station('odd-class', 'kreuzberg', { deviceClass: 99 })
    const readings = [
      await sign(s, 1n, 0n, [...TYPICAL]),
      await sign(s, 2n, 5n, TYPICAL.slice(0, 3)),
      await sign(s, 3n, 10n, [...TYPICAL, 1n]),
      await sign(s, 4n, 15n, []),
      await sign(odd, 1n, 0n, [...TYPICAL]),
    ]
    expect(verdictsOf(judge(readings, registryOf([s, odd])), [s, odd]).sort()).toEqual([
      'odd-class#1: SCHEMA_MISMATCH',
      'schema#1: accepted',
      'schema#2: SCHEMA_MISMATCH',
      'schema#3: SCHEMA_MISMATCH',
      'schema#4: SCHEMA_MISMATCH',
    ])
  })

  it('OUT_OF_RANGE: any field outside [min, max], the bounds themselves allowed', async () => {
    const s = station('range', 'mitte')
    const readings = [
      await sign(s, 1n, 0n, [-6000n, 0n, 0n, 8500n]), // every minimum
      await sign(s, 2n, 5n, [6000n, 10000n, 10000n, 11000n]), // every maximum
      await sign(s, 3n, 10n, withValues(TYPICAL, 0, 6001n)),
      await sign(s, 4n, 15n, withValues(TYPICAL, 1, -1n)),
      await sign(s, 5n, 20n, withValues(TYPICAL, 2, 10001n)),
      await sign(s, 6n, 25n, withValues(TYPICAL, 3, 8499n)),
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'range#1: accepted',
      'range#2: accepted',
      'range#3: OUT_OF_RANGE',
      'range#4: OUT_OF_RANGE',
      'range#5: OUT_OF_RANGE',
      'range#6: OUT_OF_RANGE',
    ])
  })

  it('OUTSIDE_EPOCH: the window is [epochStart, epochEnd)', async () => {
    const s = station('window', 'mitte')
    const readings = [
      await sign(s, 1n, -1n, [...TYPICAL]),
      await sign(s, 2n, 0n, [...TYPICAL]),
      await sign(s, 3n, 29n, withValues(TYPICAL, 0, 2151n)),
      await sign(s, 4n, 30n, withValues(TYPICAL, 0, 2152n)),
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'window#1: OUTSIDE_EPOCH',
      'window#2: accepted',
      'window#3: accepted',
      'window#4: OUTSIDE_EPOCH',
    ])
  })

  it('SEQUENCE_NOT_INCREASING: time must exceed the time of every earlier reading', async () => {
    const s = station('sequence', 'mitte')
    const readings = [
      await sign(s, 1n, 10n, [...TYPICAL]),
      await sign(s, 2n, 5n, withValues(TYPICAL, 0, 2151n)), // earlier than seq 1
      await sign(s, 3n, 10n, withValues(TYPICAL, 0, 2152n)), // equal to seq 1
      await sign(s, 4n, 20n, withValues(TYPICAL, 0, 2153n)),
      await sign(s, 7n, 28n, withValues(TYPICAL, 0, 2154n)), // seq gaps are fine
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'sequence#1: accepted',
      'sequence#2: SEQUENCE_NOT_INCREASING',
      'sequence#3: SEQUENCE_NOT_INCREASING',
      'sequence#4: accepted',
      'sequence#7: accepted',
    ])
  })

  it('RATE_LIMITED: at least minIntervalSeconds after the last accepted reading', async () => {
    const s = station('rate', 'mitte')
    const v = (k: bigint) => withValues(TYPICAL, 0, 2150n + k)
    const readings = [
      await sign(s, 1n, 0n, v(1n)),
      await sign(s, 2n, 4n, v(2n)), // 4 s after #1
      await sign(s, 3n, 5n, v(3n)), // 5 s after #1 (the last accepted), not after #2
      await sign(s, 4n, 6n, v(4n)),
      await sign(s, 5n, 9n, v(5n)),
      await sign(s, 6n, 10n, v(6n)),
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'rate#1: accepted',
      'rate#2: RATE_LIMITED',
      'rate#3: accepted',
      'rate#4: RATE_LIMITED',
      'rate#5: RATE_LIMITED',
      'rate#6: accepted',
    ])
    expect(judge(readings, registryOf([s])).devices[0]).toMatchObject({
      submitted: 6,
      accepted: 3,
      units: { qualityBps: 5000, uptimeBps: 5000 },
      weight: 15_000n,
    })
  })

  it('STUCK_VALUE: the stuckWindow-th identical reading in a row, and each after it', async () => {
    expect(environment.classById.get(1)?.quality?.stuckWindow).toBe(4)
    const s = station('stuck', 'mitte')
    const other = withValues(TYPICAL, 2, 124n)
    const readings = await Promise.all(
      [TYPICAL, TYPICAL, TYPICAL, TYPICAL, TYPICAL, other].map((values, k) =>
        sign(s, BigInt(k + 1), BigInt(k * 5), [...values]),
      ),
    )
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'stuck#1: accepted',
      'stuck#2: accepted',
      'stuck#3: accepted',
      'stuck#4: STUCK_VALUE',
      'stuck#5: STUCK_VALUE',
      'stuck#6: accepted',
    ])
    expect(judge(readings, registryOf([s])).devices[0]).toMatchObject({
      accepted: 4,
      units: { qualityBps: 6666, uptimeBps: 6666 },
      weight: 26_664n,
    })
  })

  it('STUCK_VALUE compares with readings accepted so far: a rejected repeat does not count', async () => {
    const s = station('stuck-gap', 'mitte')
    const readings = [
      await sign(s, 1n, 0n, [...TYPICAL]),
      await sign(s, 2n, 5n, [...TYPICAL]),
      await sign(s, 3n, 7n, [...TYPICAL]), // rate limited
      await sign(s, 4n, 10n, [...TYPICAL]),
      await sign(s, 5n, 15n, [...TYPICAL]),
    ]
    expect(verdictsOf(judge(readings, registryOf([s])), [s])).toEqual([
      'stuck-gap#1: accepted',
      'stuck-gap#2: accepted',
      'stuck-gap#3: RATE_LIMITED',
      'stuck-gap#4: accepted',
      'stuck-gap#5: STUCK_VALUE',
    ])
  })

  it('applies the rules in order: the first broken rule names the rejection', async () => {
    const s = station('order', 'mitte')
    const retired = station('order-retired', 'kreuzberg', { status: 'retired' })
    const readings = [
      // out of range and outside the epoch: OUT_OF_RANGE comes first
      await sign(s, 1n, 40n, withValues(TYPICAL, 0, 9000n)),
      // wrong schema and outside the epoch: SCHEMA_MISMATCH
      await sign(s, 2n, 40n, [1n]),
      // retired device with a wrong schema: DEVICE_RETIRED
      await sign(retired, 1n, 0n, [1n]),
    ]
    expect(verdictsOf(judge(readings, registryOf([s, retired])), [s, retired]).sort()).toEqual([
      'order#1: OUT_OF_RANGE',
      'order#2: SCHEMA_MISMATCH',
      'order-retired#1: DEVICE_RETIRED',
    ])
  })
})

describe('judgeEpoch: spatial consistency', () => {
  it('rejects a lying station against three or more honest neighbours, and only it', async () => {
    const honest = [
      station('h1', 'mitte'),
      station('h2', 'kreuzberg'),
      station('h3', 'prenzlauerBerg'),
      station('h4', 'friedrichshain'),
    ]
    const liar = station('liar', 'moabit')
    const far = station('hamburg', 'hamburg')
    const readings = [
      ...(await Promise.all(honest.map((s) => honestReadings(s)))).flat(),
      // 35 °C and 95 % while Berlin has 21.5 °C and 55 %
      ...(await honestReadings(liar, [3500n, 9500n, 123n, 10132n])),
      // far away, with odd values but no neighbours: the rule does not apply
      ...(await honestReadings(far, [-1500n, 2000n, 900n, 9000n])),
    ]
    const all = [...honest, liar, far]
    const result = judge(readings, registryOf(all))
    const verdicts = verdictsOf(result, all)
    expect(verdicts.filter((v) => v.startsWith('liar#'))).toEqual(
      [1, 2, 3, 4, 5, 6].map((k) => `liar#${k}: SPATIAL_OUTLIER`),
    )
    expect(verdicts.filter((v) => !v.startsWith('liar#')).every((v) => v.endsWith(': accepted'))).toBe(true)
    expect(rejections(result)).toEqual({ SPATIAL_OUTLIER: 6 })
    expect(result.devices.find((d) => d.device === liar.record.device)).toMatchObject({
      accepted: 0,
      weight: 0n,
    })
  })

  it('rejects only the readings of a station that stray, judged against its own median', async () => {
    const honest = [station('n1', 'mitte'), station('n2', 'kreuzberg'), station('n3', 'prenzlauerBerg')]
    const flaky = station('flaky', 'friedrichshain')
    const flakyReadings = await Promise.all(
      [TYPICAL, TYPICAL.map((v) => v + 1n), withValues(TYPICAL, 2, 900n), TYPICAL.map((v) => v + 2n)].map(
        (values, k) => sign(flaky, BigInt(k + 1), BigInt(k * 5), [...values]),
      ),
    )
    const readings = [...(await Promise.all(honest.map((s) => honestReadings(s)))).flat(), ...flakyReadings]
    const all = [...honest, flaky]
    const verdicts = verdictsOf(judge(readings, registryOf(all)), all)
    expect(verdicts.filter((v) => v.startsWith('flaky#'))).toEqual([
      'flaky#1: accepted',
      'flaky#2: accepted',
      'flaky#3: SPATIAL_OUTLIER', // pm25 90.0 µg/m³ where neighbours see 12.3
      'flaky#4: accepted',
    ])
    expect(verdicts.filter((v) => v.endsWith('SPATIAL_OUTLIER'))).toHaveLength(1)
  })

  it('skips the rule with only two neighbours', async () => {
    const honest = [station('p1', 'mitte'), station('p2', 'kreuzberg')]
    const liar = station('lonely-liar', 'moabit')
    const readings = [
      ...(await Promise.all(honest.map((s) => honestReadings(s)))).flat(),
      ...(await honestReadings(liar, [3500n, 9500n, 123n, 10132n])),
    ]
    const result = judge(readings, registryOf([...honest, liar]))
    expect(result.accepted).toBe(18)
    expect(rejections(result)).toEqual({})
  })

  it('counts as neighbours only devices of the same class with readings that passed rules 1–3', async () => {
    const honest = [station('q1', 'mitte'), station('q2', 'kreuzberg')]
    const retired = station('q-retired', 'prenzlauerBerg', { status: 'retired' })
    const liar = station('q-liar', 'moabit')
    const readings = [
      ...(await Promise.all(honest.map((s) => honestReadings(s)))).flat(),
      ...(await honestReadings(retired)), // retired: its readings do not pass, so it is no neighbour
      ...(await honestReadings(liar, [3500n, 9500n, 123n, 10132n])),
    ]
    const all = [...honest, retired, liar]
    const result = judge(readings, registryOf(all))
    expect(rejections(result)).toEqual({ DEVICE_RETIRED: 6 })
  })
})

describe('judgeEpoch: determinism', () => {
  it('gives byte-identical verdicts, scores and roots for any order of the batch, duplicates included', async () => {
    const { stations, readings } = await mixedBatch()
    const devices = registryOf(stations.filter((s) => s.name !== 'm-stranger'))
    const fingerprint = (result: JudgeEpochResult) => {
      const rewards = computeEpochRewards({
        blueprint: environment,
        epoch: 7n,
        scores: result.devices,
        previousSigners: [
          ownerAddress('validator 1'),
          ownerAddress('validator 2'),
          ownerAddress('validator 3'),
        ],
        previousCumulative: new Map([[ownerAddress('shared owner').toLowerCase(), 5n]]),
      })
      return stringify({
        judged: result.judged.map((j) => ({
          ...j.reading,
          digest: bytesToHex(j.digest),
          verdict: j.verdict,
        })),
        devices: result.devices,
        accepted: result.accepted,
        rejectedByReason: result.rejectedByReason,
        readingsRoot: result.readingsRoot,
        rewards: {
          ...rewards,
          tree: undefined,
          perOwner: [...rewards.perOwner],
          perValidator: [...rewards.perValidator],
          cumulative: [...rewards.cumulative],
        },
      })
    }
    const reference = judge(readings, devices)
    // the batch really exercises every rule
    expect(Object.values(reference.rejectedByReason).every((count) => count > 0)).toBe(true)
    const expected = fingerprint(reference)
    for (const seed of [1, 2, 3, 42, 1234, 99_999]) {
      const batch = shuffled([...readings, ...shuffled(readings, seed + 7).slice(0, seed % 11)], seed)
      expect(fingerprint(judge(batch, devices))).toBe(expected)
    }
  })
})

/** JSON with bigints as decimal strings. */
const stringify = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))

describe('the judge with another use case', () => {
  /** A use case of the test's own: rejects readings of odd seq, a device earns 2 per accepted reading. */
  const evenSeq: UseCase = {
    id: 'even-seq',
    version: 1,
    recordKinds: [READING_KIND],
    rejectReasons: ['ODD_SEQ'],
    unitNames: ['span'],
    judge({ readings, runs, verdicts, code }) {
      for (let i = 0; i < readings.length; i++)
        if (verdicts[i] === ACCEPTED && (readings[i] as SignedReading).seq % 2n === 1n)
          verdicts[i] = code('ODD_SEQ')
      return runs.map((run) => ({ span: run.end - run.start }))
    },
    weight: (device) => 2n * BigInt(device.accepted),
    recordShapeProblem: () => undefined,
  }

  it("runs the pipeline's checks, then only the use case's rules and weighting", async () => {
    const { stations, readings } = await mixedBatch()
    const result = judgeEpoch({
      blueprint: environment,
      useCase: evenSeq,
      epoch: 7n,
      epochStart: EPOCH_START,
      epochEnd: EPOCH_END,
      readings,
      devices: registryOf(stations.filter((s) => s.name !== 'm-stranger')),
      ...hashing,
    })
    // the pipeline's reasons, then the use case's: no environment rule ran
    expect(Object.keys(result.rejectedByReason)).toEqual([
      'SIGNATURE_INVALID',
      'SIGNATURE_MALLEABLE',
      'SIGNATURE_MALFORMED',
      'DEVICE_UNKNOWN',
      'DEVICE_RETIRED',
      'ODD_SEQ',
    ])
    for (const j of result.judged) {
      if (j.verdict.type === 'accepted') expect(j.reading.seq % 2n).toBe(0n)
      else if (j.verdict.reason === 'ODD_SEQ') expect(j.reading.seq % 2n).toBe(1n)
    }
    expect(result.rejectedByReason.DEVICE_UNKNOWN).toBeGreaterThan(0)
    expect(result.rejectedByReason.SIGNATURE_INVALID).toBeGreaterThan(0)
    for (const score of result.devices) {
      expect(score.weight).toBe(2n * BigInt(score.accepted))
      expect(score.units.span).toBe(score.submitted)
    }
  })

  it("refuses a use case that overturns the pipeline's rejections, or gives a code it has not", async () => {
    const { stations, readings } = await mixedBatch()
    const run = (judgeRules: UseCase['judge']) =>
      judgeEpoch({
        blueprint: environment,
        useCase: { ...evenSeq, judge: judgeRules },
        epoch: 7n,
        epochStart: EPOCH_START,
        epochEnd: EPOCH_END,
        readings,
        devices: registryOf(stations),
        ...hashing,
      })
    // accepting everything, forged signatures included
    expect(() =>
      run(({ verdicts, runs }) => {
        verdicts.fill(ACCEPTED)
        return runs.map(() => ({}))
      }),
    ).toThrow(/verdict code 0 \(the pipeline's was [1-5]\)/)
    expect(() =>
      run(({ verdicts, runs }) => {
        verdicts[verdicts.indexOf(ACCEPTED)] = 99
        return runs.map(() => ({}))
      }),
    ).toThrow(/verdict code 99/)
  })
})
