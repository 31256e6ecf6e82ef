/**
 * Fuzzing the batch decoder (`decodeBatch`), in-process: canonical batches as `encodeBatch`
 * writes them, mutated byte by byte, line by line (a field retyped, lines swapped, doubled or
 * dropped, the header changed), spliced together, or random bytes; with the right content
 * address, a wrong one, or none. Whatever it is given, the decoder either throws a `DepinError`
 * with code `BATCH_INVALID`, or returns readings whose canonical encoding is exactly the bytes it
 * was given (one encoding per batch: its content address is its only name).
 */
import fc from 'fast-check'
import { bytesToHex, type Hex } from 'viem'
import type { Keccak256 } from '../../src/crypto/keccak.ts'
import { DepinError } from '../../src/errors.ts'
import { compareReadings, decodeBatch, encodeBatch } from '../../src/gateway/batchFormat.ts'
import type { SignedReading } from '../../src/readings/reading.ts'
import { createMutator, type Json } from './mutate.ts'
import { arbitraryPool, createRandom } from './random.ts'
import type { Tally } from './tally.ts'

export type DecoderFixture = { input(): void }

export function createDecoderFixture(options: {
  seed: number
  tally: Tally
  keccak: Keccak256
}): DecoderFixture {
  const { tally, keccak } = options
  const random = createRandom(options.seed ^ 0x0dec)
  const mutator = createMutator(random)
  const randomBytes = arbitraryPool(fc.uint8Array({ maxLength: 600 }), random)
  const randomText = arbitraryPool(fc.string({ unit: 'binary', maxLength: 300 }), random)
  const encoder = new TextEncoder()

  const hex = (n: number) => Buffer.from(random.bytes(n)).toString('hex')
  const devicePool = Array.from({ length: 8 }, () => `0x${hex(20)}`)
  function canonicalBatch() {
    const epoch = random.chance(0.1) ? mutator.edgeBigInt() : BigInt(random.int(10_000))
    const count = random.chance(0.05) ? random.int(60) : random.int(5)
    const readings: SignedReading[] = []
    for (let i = 0; i < count; i++) {
      readings.push({
        device: random.pick(devicePool) as Hex,
        seq: random.chance(0.05) ? (1n << 64n) - 1n - BigInt(random.int(3)) : BigInt(random.int(1_000)),
        time: BigInt(1_800_000_000 + random.int(100_000)),
        values: Array.from({ length: random.int(6) }, () =>
          random.chance(0.2) ? mutator.edgeBigInt() % (1n << 63n) : BigInt(random.int(20_000) - 10_000),
        ),
        signature: `0x${hex(65)}` as Hex,
      })
    }
    // canonical: ordered by device then seq, each (device, seq) once; epochs within uint64
    readings.sort(compareReadings)
    const distinct = readings.filter(
      (r, i) => i === 0 || compareReadings(readings[i - 1] as SignedReading, r) !== 0,
    )
    const inRange = epoch < 0n ? -epoch : epoch
    return encodeBatch(keccak, inRange % (1n << 64n), distinct)
  }

  /** A line-level change: one line's JSON mutated, lines swapped, doubled or dropped, the header changed. */
  function mutateLines(bytes: Uint8Array): Uint8Array {
    const lines = Buffer.from(bytes).toString('utf8').split('\n')
    const last = lines.pop() // '' after the final newline
    const at = random.int(lines.length)
    switch (random.int(7)) {
      case 0: {
        let json: Json
        try {
          json = JSON.parse(lines[at] ?? 'null') as Json
        } catch {
          json = null
        }
        lines[at] = JSON.stringify(mutator.mutateJson(json)) ?? ''
        break
      }
      case 1:
        lines[at] = mutator.mutateText(lines[at] ?? '')
        break
      case 2: {
        const other = random.int(lines.length)
        ;[lines[at], lines[other]] = [lines[other] as string, lines[at] as string]
        break
      }
      case 3:
        lines.splice(at, 0, lines[at] ?? '')
        break
      case 4:
        lines.splice(at, 1)
        break
      case 5: {
        const header = JSON.parse(lines[0] ?? '{}') as Record<string, Json>
        const changed = random.pick<Record<string, Json>>([
          { ...header, count: (header.count as number) + 1 },
          { ...header, count: String(header.count) },
          { epoch: header.epoch ?? '0', format: header.format ?? '', count: header.count ?? 0 },
          { ...header, epoch: `0${header.epoch}` },
          { ...header, epoch: Number(header.epoch) },
          { ...header, format: 'depin-batch/2' },
          { ...header, extra: 1 },
        ])
        lines[0] = JSON.stringify(changed)
        break
      }
      default:
        return encoder.encode(lines.join('\r\n') + (last === undefined ? '' : '\r\n'))
    }
    return encoder.encode(`${lines.join('\n')}\n`)
  }

  function nextInput(): { kind: string; bytes: Uint8Array; expected?: Hex } {
    const base = canonicalBatch()
    const kind = random.weighted([
      [8, 'canonical'],
      [45, 'bytes'],
      [27, 'lines'],
      [7, 'random bytes'],
      [5, 'random text'],
      [8, 'spliced'],
    ] as const)
    let bytes: Uint8Array
    switch (kind) {
      case 'canonical':
        bytes = base.bytes
        break
      case 'bytes':
        bytes = base.bytes
        for (let i = 1 + random.int(4); i > 0; i--) bytes = mutator.mutateBytes(bytes)
        break
      case 'lines':
        bytes = mutateLines(base.bytes)
        break
      case 'random bytes':
        bytes = randomBytes.next()
        break
      case 'random text':
        bytes = encoder.encode(randomText.next())
        break
      default: {
        const other = canonicalBatch().bytes
        const cut = random.int(base.bytes.length + 1)
        bytes = new Uint8Array([
          ...base.bytes.subarray(0, cut),
          ...other.subarray(random.int(other.length + 1)),
        ])
      }
    }
    const expected = random.weighted([
      [40, undefined],
      [40, bytesToHex(keccak(bytes))],
      [20, base.hash],
    ] as const)
    return expected === undefined ? { kind, bytes } : { kind, bytes, expected }
  }

  return {
    input() {
      const { kind, bytes, expected } = nextInput()
      const shown = () =>
        `${kind}${expected ? ` (expected ${expected})` : ''} base64:${Buffer.from(bytes).toString('base64')}`
      let decoded: ReturnType<typeof decodeBatch>
      try {
        decoded = decodeBatch(keccak, bytes, expected)
      } catch (error) {
        if (error instanceof DepinError && error.code === 'BATCH_INVALID') {
          tally.note('decoder', 'BATCH_INVALID')
          // a canonical batch is refused only for a wrong content address, and both given are right
          if (kind === 'canonical') tally.flag('validRefused', 'decoder', kind, shown(), error)
          return
        }
        tally.flag('decoderWrongError', 'decoder', kind, shown(), error)
        return
      }
      const again = encodeBatch(keccak, decoded.epoch, decoded.readings)
      if (Buffer.compare(Buffer.from(again.bytes), Buffer.from(bytes)) !== 0 || decoded.hash !== again.hash) {
        tally.flag(
          'decoderNonCanonical',
          'decoder',
          kind,
          shown(),
          `decoded epoch ${decoded.epoch}, ${decoded.readings.length} readings; canonical bytes base64:${Buffer.from(again.bytes).toString('base64')}`,
        )
        return
      }
      tally.note(
        'decoder',
        kind === 'canonical' ? 'accepted (canonical)' : 'accepted (a mutation that is canonical)',
      )
    },
  }
}
