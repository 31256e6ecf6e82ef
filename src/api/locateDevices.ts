import { cellToParent, getResolution, gridDisk, isValidCell, latLngToCell } from 'h3-js'
import type { IndexerStore } from '../indexer/indexerStore.ts'

/** An area: H3 cells around a centre. */
export type Area = { type: 'area'; center: string; cells: Set<string> }

/** The invalid answer to an area that is not one (a 400 body). */
export type InvalidArea = { type: 'invalid'; body: object }

export type DeviceLocator = {
  /** The H3 cells within `ring` of `cell`, or of the resolution-8 cell at `lat`, `lng`. */
  areaOf(q: {
    cell?: string | undefined
    lat?: number | undefined
    lng?: number | undefined
    ring: number
  }): Area | InvalidArea
  /** Devices of the class (ever registered) whose cell lies in the area, lower-case. */
  devicesIn(area: Area, deviceClass: number): string[]
}

/** Step 2 of the mission, for every use case's routes: which registered devices lie in an area. */
export function createDeviceLocator(indexer: Pick<IndexerStore, 'listDevices'>): DeviceLocator {
  return {
    areaOf(q) {
      const center = q.cell ?? latLngToCell(q.lat as number, q.lng as number, 8)
      if (!isValidCell(center)) {
        return {
          type: 'invalid',
          body: { error: { code: 'INVALID_CELL', message: `${center} is not an H3 cell`, details: {} } },
        }
      }
      return { type: 'area', center, cells: new Set(gridDisk(center, q.ring)) }
    },
    devicesIn(area, deviceClass) {
      const resolution = getResolution(area.center)
      return indexer
        .listDevices()
        .filter((d) => d.deviceClass === deviceClass)
        .filter((d) => {
          const cell = d.h3Cell.toString(16)
          return (
            isValidCell(cell) &&
            getResolution(cell) >= resolution &&
            area.cells.has(cellToParent(cell, resolution))
          )
        })
        .map((d) => d.device.toLowerCase())
    },
  }
}
