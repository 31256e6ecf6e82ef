/**
 * The use cases this build knows, by the id a blueprint's `useCase` names: the one line a new
 * use case adds outside its own folder.
 */
import { DepinError } from '../errors.ts'
import { connectivity } from './connectivity/index.ts'
import { environment } from './environment/index.ts'
import type { UseCase } from './useCase.ts'

export const USE_CASES: Readonly<Record<string, UseCase>> = { environment, connectivity }

/** The use case a blueprint names; throws USE_CASE_UNKNOWN for one this build does not have. */
export function useCaseOf(blueprint: { useCase: string }): UseCase {
  const useCase = Object.hasOwn(USE_CASES, blueprint.useCase) ? USE_CASES[blueprint.useCase] : undefined
  if (!useCase) {
    throw new DepinError(
      'USE_CASE_UNKNOWN',
      `the blueprint's use case "${blueprint.useCase}" is not one of ${Object.keys(USE_CASES).join(', ')}`,
    )
  }
  return useCase
}
