import type { Blueprint } from '../../blueprint/loadBlueprint.ts'
import type { SignedReading } from '../../readings/reading.ts'

/**
 * The environment's record shape, checked by the gateway before it stores a reading: one value per
 * field of the device's class, in the blueprint's order. Ranges and plausibility are the
 * validators' judgement, not the gateway's.
 */
export function environmentRecordShapeProblem(
  reading: SignedReading,
  deviceClass: number,
  blueprint: Blueprint,
): string | undefined {
  const fields = blueprint.classById.get(deviceClass)?.fields.length
  if (fields === reading.values.length) return undefined
  return `class ${deviceClass} readings carry ${fields} values, not ${reading.values.length}`
}
