import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { MultiPolygon, Polygon } from 'geojson'
import { feature } from 'topojson-client'
import type { GeometryCollection, Topology } from 'topojson-specification'

/** The map's plane: equirectangular, 10 units per degree, x east from −180°, y south from 90°. */
export const MAP_WIDTH = 3600
export const MAP_HEIGHT = 1800

/** A point's position on the map plane. */
export const projectPoint = (lat: number, lng: number) => ({
  x: Math.round(((lng + 180) / 360) * MAP_WIDTH * 10) / 10,
  y: Math.round(((90 - lat) / 180) * MAP_HEIGHT * 10) / 10,
})

/**
 * The world's land as one SVG path on the map plane, from Natural Earth's 1:50m land polygons
 * (the npm package world-atlas): an offline base map, no tile server. Display only.
 */
export function projectBaseMap(): string {
  const require = createRequire(import.meta.url)
  const topology = JSON.parse(
    readFileSync(require.resolve('world-atlas/land-50m.json'), 'utf8'),
  ) as Topology<{
    land: GeometryCollection
  }>
  const land = feature(topology, topology.objects.land)
  const parts: string[] = []
  for (const f of land.features) {
    const geometry = f.geometry as Polygon | MultiPolygon
    const polygons = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates
    for (const polygon of polygons) {
      for (const ring of polygon) {
        // a ring that crosses the antimeridian is unwrapped (it continues past the map's edge
        // instead of drawing a line across the world) and drawn again one world to each side,
        // so the part past the edge shows on the other
        let shift = 0
        let crosses = false
        let previous: number | undefined
        const points = ring.map(([lng, lat]) => {
          const at = (lng as number) + shift
          if (previous !== undefined && Math.abs(at - previous) > 180) {
            shift += at > previous ? -360 : 360
            crosses = true
          }
          previous = (lng as number) + shift
          return projectPoint(lat as number, previous)
        })
        for (const offset of crosses ? [0, -MAP_WIDTH, MAP_WIDTH] : [0]) {
          parts.push(`M${points.map((p) => `${Math.round((p.x + offset) * 10) / 10} ${p.y}`).join('L')}Z`)
        }
      }
    }
  }
  return parts.join('')
}
