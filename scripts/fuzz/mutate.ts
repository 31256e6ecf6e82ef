/**
 * Mutations for the fuzzer: of JSON values (structured: one node of the tree replaced, removed,
 * retyped, …, so most inputs stay near-valid and reach deep code), of JSON text (truncated,
 * spliced, …) and of bytes. Every function is pure given its `Random`.
 */
import fc from 'fast-check'
import { type ArbitraryPool, arbitraryPool, type Random } from './random.ts'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const TWO_63 = 2n ** 63n
const TWO_64 = 2n ** 64n
/** Integers at and beyond the int64/uint64/uint256/safe-integer edges, as decimal strings. */
export const EDGE_INTEGERS: readonly string[] = [
  '0',
  '1',
  '-1',
  String(TWO_63 - 1n),
  String(TWO_63),
  String(-TWO_63),
  String(-TWO_63 - 1n),
  String(TWO_64 - 1n),
  String(TWO_64),
  String(TWO_64 + 1n),
  String(2n ** 53n - 1n),
  String(2n ** 53n),
  String(2n ** 53n + 1n),
  String(2n ** 32n - 1n),
  String(2n ** 32n),
  String(2n ** 256n - 1n),
  String(2n ** 256n),
  '9'.repeat(20),
  '1'.repeat(21),
  '9'.repeat(78),
  '9'.repeat(79),
  '-0',
  '00',
  '01',
  '-01',
  '0'.repeat(20),
]

/** Odd strings: number look-alikes, hex look-alikes, unicode, control characters, long ones. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  '1.0',
  '1e3',
  '1E3',
  '+1',
  ' 1',
  '1 ',
  '0x10',
  '0b1',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'true',
  '١٢٣',
  '１２３',
  '\u0000',
  '\u0000123',
  '12\u00003',
  '\ud800',
  '\udfff',
  '\ufeff1',
  '\u202e123',
  '\u200b',
  'é',
  'e\u0301',
  '🙂',
  '0x',
  '0X',
  `0x${'0'.repeat(40)}`,
  `0x${'f'.repeat(40)}`,
  `0x${'F'.repeat(40)}`,
  `0x${'0'.repeat(64)}`,
  `0x${'f'.repeat(64)}`,
  `0x${'0'.repeat(130)}`,
  `0x${'f'.repeat(130)}`,
  `0x${'1'.repeat(129)}`,
  `0x${'1'.repeat(131)}`,
  `0x${'g'.repeat(40)}`,
  'a'.repeat(1_000),
  '\\',
  '"',
  '%00',
  '../../etc/passwd',
]

/** JSON values of every type, with the shapes parsers trip on. */
export const EDGE_VALUES: readonly Json[] = [
  null,
  true,
  false,
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  -1.5,
  1e21,
  1e308,
  -1e308,
  5e-324,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  2 ** 64,
  -(2 ** 63),
  4294967295,
  4294967296,
  [],
  [[]],
  [null],
  {},
  JSON.parse('{"__proto__":{"polluted":1}}') as Json,
  { constructor: { prototype: { polluted: 1 } } },
  ...EDGE_INTEGERS,
  ...EDGE_STRINGS,
]

/** Sets an own property, `__proto__` included (an assignment would set the prototype instead). */
function setOwn(object: Record<string, Json>, key: string, value: Json): void {
  Object.defineProperty(object, key, { value, enumerable: true, configurable: true, writable: true })
}

/** Where a node lies in a JSON tree: keys of objects, indexes of arrays, from the root. */
type Path = (string | number)[]

function pathsOf(value: Json, limit = 400): Path[] {
  const out: Path[] = [[]]
  const walk = (node: Json, path: Path) => {
    if (out.length >= limit || node === null || typeof node !== 'object') return
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length && out.length < limit; i++) {
        out.push([...path, i])
        walk(node[i] as Json, [...path, i])
      }
    } else {
      for (const key of Object.keys(node)) {
        if (out.length >= limit) break
        out.push([...path, key])
        walk(node[key] as Json, [...path, key])
      }
    }
  }
  walk(value, [])
  return out
}

function getAt(value: Json, path: Path): Json | undefined {
  let node: Json | undefined = value
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string | number, Json>)[key]
  }
  return node
}

/** A copy of `value` with the node at `path` replaced by `replace(node)`, or removed when it returns undefined. */
function updateAt(value: Json, path: Path, replace: (node: Json) => Json | undefined): Json {
  if (path.length === 0) return replace(value) ?? null
  const [key, ...rest] = path as [string | number, ...Path]
  if (Array.isArray(value)) {
    const copy = [...value]
    const index = key as number
    const child =
      rest.length === 0 ? replace(copy[index] as Json) : updateAt(copy[index] as Json, rest, replace)
    if (child === undefined) copy.splice(index, 1)
    else copy[index] = child
    return copy
  }
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, Json> = { ...value }
    const child =
      rest.length === 0
        ? replace(copy[key as string] as Json)
        : updateAt(copy[key as string] as Json, rest, replace)
    if (child === undefined) delete copy[key as string]
    else setOwn(copy, key as string, child)
    return copy
  }
  return value
}

export type Mutator = {
  /** One structured change somewhere in `value` (a new tree; `value` is left alone). */
  mutateJson(value: Json, at?: Path): Json
  /** One change of JSON text (it usually stops being JSON, or becomes other JSON). */
  mutateText(text: string): string
  /** One change of bytes. */
  mutateBytes(bytes: Uint8Array): Uint8Array
  /** A random JSON value of fast-check's (any type, unicode keys and strings). */
  randomJson(): Json
  /** A random string of fast-check's (any UTF-16 code unit, lone surrogates included). */
  randomString(): string
  /** A random integer near the 64-bit edges, as a bigint. */
  edgeBigInt(): bigint
}

/** JSON text fragments worth splicing in. */
const TEXT_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ',',
  ':',
  '\\',
  '\\u0000',
  '\\ud800',
  '\\uDFFF',
  '\u0000',
  '\ufeff',
  '\u2028',
  'null',
  'true',
  '-',
  '0',
  '1e999',
  '-0.0',
  ' ',
  '\n',
  '\r\n',
  '\t',
  '/*',
  '//',
  "'",
  'NaN',
  '"__proto__":',
  '{"a":',
  '[[[[[[[[',
  ']]]]]]]]',
  '9'.repeat(400),
  '🙂',
]

/** Bytes worth writing: boundaries, JSON's structural bytes, and bytes no UTF-8 text has. */
const INTERESTING_BYTES = [
  0x00, 0x01, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x30, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xc0, 0xc3, 0xed,
  0xef, 0xfe, 0xff,
]
/** Byte sequences: a UTF-8 BOM, an overlong NUL, an encoded surrogate, CRLF, truncated multi-byte characters. */
const BYTE_TOKENS: readonly number[][] = [
  [0xef, 0xbb, 0xbf],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0x0d, 0x0a],
  [0x0d],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x99],
  [0xf4, 0x90, 0x80, 0x80],
  [0x22, 0x2c, 0x22],
  [0x5c, 0x75, 0x30, 0x30, 0x33, 0x30], // \u0030, an escaped "0"
  [0x5c, 0x2f], // \/
  [0x0a],
]

export function createMutator(random: Random): Mutator {
  const jsonPool: ArbitraryPool<unknown> = arbitraryPool(fc.jsonValue({ maxDepth: 3 }), random)
  const stringPool: ArbitraryPool<string> = arbitraryPool(
    fc.string({
      unit: fc.oneof(
        fc.constantFrom('0', '1', 'a', 'f', 'x', 'F', '-', ' '),
        fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      ),
      maxLength: 24,
    }),
    random,
  )
  const bigIntPool: ArbitraryPool<bigint> = arbitraryPool(
    fc.oneof(
      fc.bigInt({ min: -(2n ** 64n) - 16n, max: 2n ** 64n + 16n }),
      fc
        .constantFrom(...EDGE_INTEGERS.map((s) => BigInt(s)))
        .chain((edge) => fc.bigInt({ min: edge - 2n, max: edge + 2n })),
    ),
    random,
  )
  const randomJson = () => jsonPool.next() as Json
  const randomString = () => stringPool.next()
  const edgeValue = (): Json => random.pick(EDGE_VALUES)

  function mutateString(s: string): string {
    const at = random.int(s.length + 1)
    switch (random.int(11)) {
      case 0: // a character changed
        return s.length === 0
          ? randomString()
          : `${s.slice(0, at)}${random.pick(['0', '1', 'f', 'F', 'g', 'x', ' ', '\u0000', '٣'])}${s.slice(at + 1)}`
      case 1: // case swapped
        return random.chance(0.5) ? s.toUpperCase() : s.toLowerCase()
      case 2: // truncated
        return s.slice(0, at)
      case 3: // a character inserted
        return `${s.slice(0, at)}${random.pick(['0', 'a', ' ', '\u200b', '\ud800', '🙂', '-', '.'])}${s.slice(at)}`
      case 4: // doubled
        return s + s
      case 5:
        return randomString()
      case 6: // padded
        return random.chance(0.5) ? ` ${s}` : `${s} `
      case 7: // a prefix of zeros or a sign
        return `${random.pick(['0', '00', '-', '+', '0x'])}${s}`
      case 8: // the last character dropped or added
        return random.chance(0.5) ? s.slice(0, -1) : `${s}${s.at(-1) ?? '0'}`
      case 9:
        return random.pick(EDGE_STRINGS)
      default:
        return random.pick(EDGE_INTEGERS)
    }
  }

  function mutateNumber(n: number): Json {
    switch (random.int(8)) {
      case 0:
        return n + 1
      case 1:
        return n - 1
      case 2:
        return -n
      case 3:
        return n * 2 ** (1 + random.int(70))
      case 4:
        return String(n)
      case 5:
        return n + 0.5
      case 6:
        return Number(random.pick(EDGE_INTEGERS))
      default:
        return random.pick(EDGE_INTEGERS)
    }
  }

  function mutateNode(node: Json): Json | undefined {
    const op = random.int(20)
    if (op < 5) return edgeValue()
    if (op < 6) return randomJson()
    if (op < 7) return undefined // removed
    if (op < 8) return [node] // wrapped
    if (op < 9) return JSON.stringify(node) ?? null // retyped as its own text
    if (typeof node === 'string') {
      if (op < 11 && /^-?\d+$/.test(node)) return Number(node) // a decimal string as a JSON number
      return mutateString(node)
    }
    if (typeof node === 'number') return mutateNumber(node)
    if (Array.isArray(node)) {
      const i = random.int(node.length)
      switch (random.int(6)) {
        case 0:
          return [...node, edgeValue()]
        case 1:
          return node.length > 0 ? [...node.slice(0, i), node[i] as Json, ...node.slice(i)] : [edgeValue()]
        case 2:
          return node.slice(0, i)
        case 3:
          return [...node].reverse()
        case 4:
          return []
        default:
          return Array.from({ length: 1 + random.int(40) }, () => node[0] ?? edgeValue())
      }
    }
    if (node !== null && typeof node === 'object') {
      const keys = Object.keys(node)
      const copy: Record<string, Json> = { ...node }
      switch (random.int(5)) {
        case 0: {
          if (keys.length > 0) delete copy[random.pick(keys)]
          return copy
        }
        case 1: {
          setOwn(
            copy,
            random.pick(['__proto__', 'constructor', 'prototype', 'toString', randomString(), '']),
            edgeValue(),
          )
          return copy
        }
        case 2: {
          if (keys.length === 0) return copy
          const key = random.pick(keys)
          const value = copy[key] as Json
          delete copy[key]
          setOwn(copy, random.chance(0.5) ? key.toUpperCase() : `${key} `, value)
          return copy
        }
        case 3:
          return {}
        default:
          return Object.fromEntries(Object.entries(copy).reverse())
      }
    }
    return edgeValue()
  }

  function mutateText(text: string): string {
    const at = random.int(text.length + 1)
    const end = Math.min(text.length, at + 1 + random.int(16))
    switch (random.int(8)) {
      case 0:
        return text.slice(0, at) // truncated
      case 1:
        return text.slice(0, at) + text.slice(end) // a range deleted
      case 2:
        return text.slice(0, at) + random.pick(TEXT_TOKENS) + text.slice(at)
      case 3:
        return text.slice(0, at) + random.pick(TEXT_TOKENS) + text.slice(end)
      case 4:
        return text.slice(0, end) + text.slice(at, end) + text.slice(end) // a range doubled
      case 5: {
        const code = text.charCodeAt(at)
        return Number.isNaN(code)
          ? `${text} `
          : text.slice(0, at) + String.fromCharCode(code ^ (1 << random.int(7))) + text.slice(at + 1)
      }
      case 6:
        return `${random.pick(['\ufeff', ' ', '\n', '[', '{"readings":'])}${text}`
      default:
        return `${text}${random.pick(['}', ']', ',', ' ', '\n', 'x', '{}'])}`
    }
  }

  function mutateBytes(bytes: Uint8Array): Uint8Array {
    const at = random.int(bytes.length + 1)
    const end = Math.min(bytes.length, at + 1 + random.int(32))
    const join = (...parts: ArrayLike<number>[]) => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
      let offset = 0
      for (const part of parts) {
        out.set(part, offset)
        offset += part.length
      }
      return out
    }
    switch (random.int(9)) {
      case 0: {
        const out = bytes.slice()
        if (out.length > 0) {
          const i = random.int(out.length)
          out[i] = (out[i] as number) ^ (1 << random.int(8))
        }
        return out
      }
      case 1: {
        const out = bytes.slice()
        if (out.length > 0) out[random.int(out.length)] = random.pick(INTERESTING_BYTES)
        return out
      }
      case 2:
        return join(bytes.subarray(0, at), random.pick(BYTE_TOKENS), bytes.subarray(at))
      case 3:
        return join(bytes.subarray(0, at), bytes.subarray(end))
      case 4:
        return join(bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end))
      case 5:
        return bytes.subarray(0, at).slice()
      case 6:
        return join(random.pick(BYTE_TOKENS), bytes)
      case 7:
        return join(bytes.subarray(0, at), random.bytes(1 + random.int(8)), bytes.subarray(at))
      default:
        return join(bytes, random.pick(BYTE_TOKENS))
    }
  }

  return {
    mutateJson(value, at) {
      const paths = pathsOf(value)
      const path = at ?? random.pick(paths)
      if (getAt(value, path) === undefined && path.length > 0) return value
      return updateAt(value, path, mutateNode)
    },
    mutateText,
    mutateBytes,
    randomJson,
    randomString,
    edgeBigInt: () => bigIntPool.next(),
  }
}

/** `[[[…]]]` or `{"a":{"a":…}}`, `depth` deep: for parsers and validators that recurse. */
export function deeplyNested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
}
