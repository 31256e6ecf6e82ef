import type { Hex } from 'viem'
import { afterEach, beforeEach } from 'vitest'
import type { TestNetwork } from './testNetwork.ts'

/** Gives every test of the file the same starting chain: a snapshot before each test, reverted after it. */
export function revertAfterEachTest(net: () => TestNetwork): void {
  let snapshot: Hex
  beforeEach(async () => {
    snapshot = await net().snapshot()
  })
  afterEach(async () => {
    await net().revert(snapshot)
  })
}
