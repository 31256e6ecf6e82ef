import { bytesToHex, type Hex } from 'viem'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Keccak256, loadKeccak256 } from '../crypto/keccak.ts'
import { decodeBatch, encodeBatch } from './batchFormat.ts'

let keccak: Keccak256
beforeAll(async () => {
  keccak = await loadKeccak256()
})

const reading = (seq: bigint) => ({
  device: `0x${'ab'.repeat(20)}` as Hex,
  seq,
  time: 1_700_000_000n + seq,
  values: [215n, -3n, 9_223_372_036_854_775_807n],
  signature: `0x${'12'.repeat(65)}` as Hex,
})
const encode = (text: string) => new TextEncoder().encode(text)
const header = (count: number) => `{"format":"depin-batch/1","epoch":"7","count":${count}}\n`

describe('decodeBatch', () => {
  it('decodes what encodeBatch wrote, the same readings back', () => {
    const batch = encodeBatch(keccak, 7n, [reading(1n), reading(2n)])
    expect(decodeBatch(keccak, batch.bytes, batch.hash)).toEqual({
      epoch: 7n,
      hash: batch.hash,
      readings: [reading(1n), reading(2n)],
    })
  })

  it('refuses, with BATCH_INVALID, every batch that is not canonical or not well formed', () => {
    const good = `["0x${'ab'.repeat(20)}","1","1700000001",["215"],"0x${'12'.repeat(65)}"]`
    const cases: Record<string, string> = {
      'not JSON': `${header(1)}[oops\n`,
      'a header of another format': `{"format":"other","epoch":"7","count":1}\n${good}\n`,
      'a header with spaces': `{"format": "depin-batch/1","epoch":"7","count":1}\n${good}\n`,
      'a miscount': `${header(2)}${good}\n`,
      'no final newline': `${header(1)}${good}`,
      'an object line': `${header(1)}{"device":"0x00"}\n`,
      'a short line': `${header(1)}["0x${'ab'.repeat(20)}","1","1",[]]\n`,
      'an upper-case device': `${header(1)}["0x${'AB'.repeat(20)}","1","1",[],"0x${'12'.repeat(65)}"]\n`,
      'a numeric seq': `${header(1)}["0x${'ab'.repeat(20)}",1,"1",[],"0x${'12'.repeat(65)}"]\n`,
      'a seq past uint64': `${header(1)}["0x${'ab'.repeat(20)}","18446744073709551616","1",[],"0x${'12'.repeat(65)}"]\n`,
      'a leading zero': `${header(1)}["0x${'ab'.repeat(20)}","01","1",[],"0x${'12'.repeat(65)}"]\n`,
      'a value past int64': `${header(1)}["0x${'ab'.repeat(20)}","1","1",["9223372036854775808"],"0x${'12'.repeat(65)}"]\n`,
      'a fractional value': `${header(1)}["0x${'ab'.repeat(20)}","1","1",["1.5"],"0x${'12'.repeat(65)}"]\n`,
      'a short signature': `${header(1)}["0x${'ab'.repeat(20)}","1","1",[],"0x12"]\n`,
      'spaces in a line': `${header(1)}["0x${'ab'.repeat(20)}", "1","1",[],"0x${'12'.repeat(65)}"]\n`,
      'readings out of order': `${header(2)}${good}\n${good}\n`,
    }
    for (const [what, text] of Object.entries(cases)) {
      expect(() => decodeBatch(keccak, encode(text)), what).toThrow(
        expect.objectContaining({ code: 'BATCH_INVALID' }),
      )
    }
    // bytes that are not UTF-8 (a stray byte, an overlong NUL, an encoded surrogate)
    for (const bytes of [
      [0xff, 0xfe, 0x0a],
      [0xc0, 0x80, 0x0a],
      [0xed, 0xa0, 0x80, 0x0a],
    ]) {
      expect(() => decodeBatch(keccak, new Uint8Array(bytes))).toThrow(
        expect.objectContaining({ code: 'BATCH_INVALID' }),
      )
    }
    // a canonical batch behind a UTF-8 byte-order mark: other bytes, so not canonical (found by npm run fuzz)
    const canonical = encodeBatch(keccak, 7n, [reading(1n)]).bytes
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...canonical])
    expect(() => decodeBatch(keccak, withBom)).toThrow(expect.objectContaining({ code: 'BATCH_INVALID' }))
    expect(() => decodeBatch(keccak, withBom, bytesToHex(keccak(withBom)))).toThrow(
      expect.objectContaining({ code: 'BATCH_INVALID' }),
    )
    // another batch's content address
    const batch = encodeBatch(keccak, 7n, [reading(1n)])
    expect(() => decodeBatch(keccak, batch.bytes, bytesToHex(keccak(encode('other'))))).toThrow(
      expect.objectContaining({ code: 'BATCH_INVALID' }),
    )
  })
})
