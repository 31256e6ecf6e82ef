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
        const points = ring.map(([lng, lat]) => projectPoint(lat as number, lng as number))
        parts.push(`M${points.map((p) => `${p.x} ${p.y}`).join('L')}Z`)
      }
    }
  }
  return parts.join('')
}
