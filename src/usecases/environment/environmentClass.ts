import type { Blueprint, DeviceClassRules } from '../../blueprint/loadBlueprint.ts'

/** The environment's quality rules of a class. */
export type Quality = NonNullable<DeviceClassRules['quality']>

/** A class of environmental sensors: fields and quality rules. */
export type EnvironmentClass = DeviceClassRules & { quality: Quality }

const isEnvironmentClass = (cls: DeviceClassRules | undefined): cls is EnvironmentClass =>
  cls !== undefined && cls.quality !== undefined && cls.fields.length > 0

/** A class of the blueprint as the environment's rules read it, or undefined (no such sensor class). */
export function environmentClassOf(blueprint: Blueprint, id: number): EnvironmentClass | undefined {
  const cls = blueprint.classById.get(id)
  return isEnvironmentClass(cls) ? cls : undefined
}

/** The blueprint's sensor classes. */
export function environmentClasses(blueprint: Blueprint): EnvironmentClass[] {
  return blueprint.deviceClasses.filter(isEnvironmentClass)
}

/** What an environment blueprint lacks: every class needs its fields and quality rules. */
export function environmentBlueprintProblems(blueprint: Blueprint): string[] {
  return blueprint.deviceClasses.flatMap((cls, i) => [
    ...(cls.fields.length === 0
      ? [`deviceClasses.${i}.fields: a sensor class needs at least one field`]
      : []),
    ...(cls.quality === undefined
      ? [`deviceClasses.${i}.quality: a sensor class needs its quality rules`]
      : []),
  ])
}
