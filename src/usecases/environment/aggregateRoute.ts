/**
 * The environment's delivery route: an aggregate of a field over an area (H3 cells around a point)
 * and a time window, with every reading it is computed from and that reading's proof, so anyone
 * recomputes and checks it (`depin aggregate` does).
 */
import { formatUnits } from 'viem'
import { z } from 'zod'
import { aggregateValues } from '../../api/aggregateValues.ts'
import { areaFields, windowOf, windowSchema } from '../../api/apiQueries.ts'
import type { UseCaseRoute } from '../useCase.ts'

/** Most readings one aggregate is computed from (each comes with its proof). */
export const MAX_AGGREGATE_READINGS = 10_000

export const aggregateQuerySchema = windowSchema
  .extend({
    field: z.string().min(1).describe('a field of the device class, e.g. temperature'),
    ...areaFields,
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_AGGREGATE_READINGS)
      .default(1_000)
      .describe('most readings the aggregate may use (more matching is a 413 QUERY_TOO_LARGE)'),
  })
  .refine((q) => q.cell !== undefined || (q.lat !== undefined && q.lng !== undefined), {
    message: 'give cell, or lat and lng',
    path: ['cell'],
  })

export const aggregateRoute: UseCaseRoute = {
  path: '/v1/aggregate',
  summary:
    "Count, min, max, median and mean of a field over an area and a time window, with every reading it is computed from and that reading's proof",
  query: aggregateQuerySchema,
  register({ server, blueprint, locate, acceptedReadings, prove, invalidQuery, toJson, pay }) {
    server.get('/v1/aggregate', async (request, reply) => {
      const query = aggregateQuerySchema.safeParse(request.query)
      if (!query.success) return invalidQuery(reply, query.error)
      const { field, ring, limit } = query.data
      const { from, to } = windowOf(query.data)
      const deviceClass =
        query.data.class === undefined
          ? blueprint.deviceClasses[0]
          : blueprint.classById.get(query.data.class)
      const fieldIndex = deviceClass?.fields.findIndex((f) => f.name === field) ?? -1
      if (!deviceClass || fieldIndex < 0) {
        return reply.status(400).send({
          error: {
            code: 'UNKNOWN_FIELD',
            message: `no field "${field}" in device class ${query.data.class ?? deviceClass?.id}`,
            details: { fields: deviceClass?.fields.map((f) => f.name) ?? [] },
          },
        })
      }
      const area = locate.areaOf(query.data)
      if (area.type === 'invalid') return reply.status(400).send(area.body)
      // paid from here on: a refused payment serves nothing
      const ticket = pay?.guard(request, reply, { item: 'aggregate', maxReadings: limit })
      if (pay && !ticket) return reply
      const devices = locate.devicesIn(area, deviceClass.id)
      const found = acceptedReadings({ from, to, devices, limit: limit + 1 })
      if (found.length > limit) {
        return reply.status(413).send({
          error: {
            code: 'QUERY_TOO_LARGE',
            message: `more than ${limit} readings match: narrow the area or the window, or raise limit (at most ${MAX_AGGREGATE_READINGS})`,
            details: { limit },
          },
        })
      }
      const proven = prove(found)
      if (
        ticket &&
        !(await pay?.charge(request, reply, ticket, { item: 'aggregate', readings: proven.readings }))
      )
        return reply
      const values = proven.readings.map((r) => BigInt(r.reading.values[fieldIndex] as string))
      const fieldRules = deviceClass.fields[fieldIndex] as (typeof deviceClass.fields)[number]
      const aggregate = aggregateValues(values)
      const decimal = (v: bigint) => formatUnits(v, fieldRules.scale)
      return toJson({
        area: { cell: area.center, ring, cells: area.cells.size, devices: devices.length },
        from,
        to,
        field: { name: fieldRules.name, unit: fieldRules.unit, scale: fieldRules.scale, index: fieldIndex },
        ...aggregate,
        ...(aggregate.count > 0 && 'min' in aggregate
          ? {
              decimal: {
                min: decimal(aggregate.min),
                max: decimal(aggregate.max),
                median: decimal(aggregate.median),
                mean: decimal(aggregate.mean),
              },
            }
          : {}),
        ...proven,
      })
    })
  },
}
