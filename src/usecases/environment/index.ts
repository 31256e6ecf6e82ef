/**
 * Environmental sensors (weather and air stations): the first use case. Readings are integer
 * values per field of the device's class; the rules accept those in range, in the epoch, not too
 * frequent, not stuck and consistent with the neighbours; a device earns accepted × quality.
 */
import { READING_KIND } from '../../readings/recordKinds.ts'
import type { UseCase } from '../useCase.ts'
import { aggregateRoute } from './aggregateRoute.ts'
import { environmentBlueprintProblems } from './environmentClass.ts'
import { environmentRecordShapeProblem } from './recordShape.ts'
import { ENVIRONMENT_REJECT_REASONS, environmentWeight, judgeEnvironment } from './rules.ts'
import { stationOptionsOf } from './simulator/stationOptions.ts'

export const environment: UseCase = {
  id: 'environment',
  version: 1,
  recordKinds: [READING_KIND],
  countsLateRecords: true,
  rejectReasons: ENVIRONMENT_REJECT_REASONS,
  unitNames: ['qualityBps', 'uptimeBps'],
  judge: judgeEnvironment,
  weight: environmentWeight,
  recordShapeProblem: environmentRecordShapeProblem,
  blueprintProblems: environmentBlueprintProblems,
  routes: [aggregateRoute],
  dashboardPanel: new URL('./dashboardPanel.js', import.meta.url),
  simulationOptions: stationOptionsOf,
  async simulate(context) {
    const { simulateStations } = await import('./simulator/simulateStations.ts')
    return simulateStations(context)
  },
}
