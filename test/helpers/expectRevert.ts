import { BaseError, ContractFunctionRevertedError } from 'viem'
import { expect } from 'vitest'

/** Asserts that `promise` fails with the custom error `errorName` of a contract. */
export async function expectRevert(
  promise: Promise<unknown>,
  errorName: string,
): Promise<readonly unknown[]> {
  try {
    await promise
  } catch (error) {
    if (!(error instanceof BaseError)) throw error
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError)
    expect(revert, `expected revert ${errorName}, got: ${error.shortMessage}`).toBeInstanceOf(
      ContractFunctionRevertedError,
    )
    expect((revert as ContractFunctionRevertedError).data?.errorName).toBe(errorName)
    return (revert as ContractFunctionRevertedError).data?.args ?? []
  }
  throw new Error(`expected revert ${errorName}, but the call succeeded`)
}
