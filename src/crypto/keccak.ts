import { createKeccak, type IHasher } from 'hash-wasm'

/** keccak-256 of bytes, synchronous once loaded. */
export type Keccak256 = (data: Uint8Array) => Uint8Array

let loading: Promise<Keccak256> | undefined

/**
 * Loads a fast keccak-256 (hash-wasm, ≈ 8× noble's pure JS). One shared hasher: each call runs
 * init → update → digest synchronously, so calls never interleave.
 */
export function loadKeccak256(): Promise<Keccak256> {
  loading ??= createKeccak(256).then((hasher: IHasher) => (data: Uint8Array) => {
    hasher.init()
    hasher.update(data)
    return hasher.digest('binary')
  })
  return loading
}
