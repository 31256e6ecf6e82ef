/**
 * The query strings of the API's routes, validated with zod: a bad one is a 400 INVALID_QUERY
 * naming the parameter. The OpenAPI document (openApiDocument.ts) describes them from here.
 */
import { isAddress } from 'viem'
import { z } from 'zod'

/** Most readings one answer of the stream sends per epoch (each comes with its proof). */
export const MAX_STREAM_READINGS = 10_000

export const unixSeconds = z.coerce.bigint().refine((v) => v >= 0n && v < 1n << 40n, 'unix seconds')
/** A time window: `from` and `to` in unix seconds, `to` excluded; default the last hour. */
export const windowSchema = z.object({
  from: unixSeconds.optional().describe('unix seconds, included (default: an hour before `to`)'),
  to: unixSeconds.optional().describe('unix seconds, excluded (default: now)'),
})
export const windowOf = (q: { from?: bigint | undefined; to?: bigint | undefined }) => {
  const to = q.to ?? BigInt(Math.floor(Date.now() / 1000)) + 1n
  return { from: q.from ?? to - 3_600n, to }
}
export const deviceField = z
  .string()
  .refine((v) => isAddress(v), 'an address')
  .optional()
  .describe("a device's address")
/** An area: the H3 cell `cell` (hex), or the resolution-8 cell at `lat`, `lng`, and `ring` rings around it. */
export const areaFields = {
  class: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe("a device class id (default: the blueprint's first)"),
  cell: z
    .string()
    .regex(/^[0-9a-f]{15}$/, 'an H3 cell in hex')
    .optional()
    .describe('the centre of the area: an H3 cell, in hex'),
  lat: z.coerce
    .number()
    .min(-90)
    .max(90)
    .optional()
    .describe('with lng, instead of cell: the resolution-8 cell there'),
  lng: z.coerce.number().min(-180).max(180).optional().describe('with lat'),
  ring: z.coerce
    .number()
    .int()
    .min(0)
    .max(10)
    .default(1)
    .describe('rings of cells around the centre (0: the cell alone)'),
}
export const readingsQuerySchema = windowSchema.extend({
  device: deviceField,
  limit: z.coerce.number().int().min(1).max(1_000).default(100).describe('most readings returned'),
})
/** Most readings the free preview of a device serves (the dashboard's; the rest is paid where priced). */
export const MAX_PREVIEW_READINGS = 20
export const previewQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PREVIEW_READINGS)
    .default(MAX_PREVIEW_READINGS)
    .describe('most readings returned, the newest'),
})
export const streamQuerySchema = z
  .object({
    device: deviceField,
    ...areaFields,
    /** The last epoch the client has: the stream starts after it (default: the next to settle). */
    since: z.coerce
      .bigint()
      .min(-1n)
      .optional()
      .describe('the last epoch the client has; the stream starts after it'),
  })
  // a point needs both coordinates (lat alone was a 500: found by npm run fuzz)
  .refine((q) => (q.lat === undefined) === (q.lng === undefined), {
    message: 'give lat and lng together',
    path: ['lng'],
  })
export const epochsQuerySchema = z.object({
  /** Newest first. */
  limit: z.coerce.number().int().min(1).max(500).default(20),
})
export const receiptsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(20).default(10).describe('most receipts returned (newest first)'),
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'an epoch number')
    .transform(BigInt)
    .optional()
    .describe('only epochs before this one'),
})
export const devicesQuerySchema = z.object({
  owner: z
    .string()
    .refine((v) => isAddress(v), 'an address')
    .optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
})
