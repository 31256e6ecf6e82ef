/**
 * The coverage map: per settled epoch, the cells where a hotspot's beacon was heard by rewarded
 * witnesses, each with the hotspot's receipt and its proof against the receipts root the epoch's
 * ReportAccepted event carries — so anyone checks the map against the chain with OpenZeppelin's
 * StandardMerkleTree.verify, trusting nothing the API says.
 */
import { cellToBoundary, cellToParent, getResolution, isValidCell } from 'h3-js'
import { z } from 'zod'
import { RECEIPT_LEAF_TYPES, receiptToJson } from '../../rewards/receiptsTree.ts'
import type { UseCaseRoute } from '../useCase.ts'

/** The map's cells: H3 resolution 8 (about 0.7 km²). */
export const COVERAGE_RESOLUTION = 8

export const coverageQuerySchema = z.object({
  epoch: z
    .string()
    .regex(/^\d{1,18}$/, 'an epoch number')
    .transform(BigInt)
    .optional()
    .describe('a settled epoch (default: the last settled)'),
})

export function coverageRoute(unitNames: readonly string[]): UseCaseRoute {
  const beaconWitnesses = unitNames.indexOf('beaconWitnesses')
  return {
    path: '/v1/coverage',
    summary:
      "The coverage map of a settled epoch: the cells where a hotspot's beacon was heard by rewarded witnesses, each with the hotspot's receipt and its proof against the epoch's receipts root",
    query: coverageQuerySchema,
    register({ server, invalidQuery, toJson, epochReceipts, settledEpochs, device }) {
      server.get('/v1/coverage', async (request, reply) => {
        const query = coverageQuerySchema.safeParse(request.query)
        if (!query.success) return invalidQuery(reply, query.error)
        const epoch = query.data.epoch ?? settledEpochs(1)[0]?.epoch
        if (epoch === undefined) return toJson({ epoch: null, resolution: COVERAGE_RESOLUTION, cells: [] })
        const receipts = epochReceipts(epoch)
        if (!receipts)
          return reply.status(404).send({
            error: {
              code: 'EPOCH_UNPROVABLE',
              message: `epoch ${epoch} is not settled, or this API cannot prove its receipts`,
              details: { epoch: epoch.toString() },
            },
          })
        const cells = receipts.flatMap(({ receipt, proof, receiptsRoot }) => {
          const heard = receipt.units[beaconWitnesses] ?? 0n
          const hex = device(receipt.device)?.h3Cell.toString(16)
          if (heard <= 0n || !hex || !isValidCell(hex) || getResolution(hex) < COVERAGE_RESOLUTION) return []
          const cell = cellToParent(hex, COVERAGE_RESOLUTION)
          return [
            {
              cell,
              // display only (the proof is the receipt's): the cell's corners, [lat, lng]
              boundary: cellToBoundary(cell),
              hotspot: receipt.device,
              witnesses: heard,
              receipt: receiptToJson(receipt),
              receiptsRoot,
              proof,
            },
          ]
        })
        cells.sort((a, b) => (a.cell < b.cell ? -1 : a.cell > b.cell ? 1 : 0))
        return toJson({ epoch, resolution: COVERAGE_RESOLUTION, leafTypes: RECEIPT_LEAF_TYPES, cells })
      })
    },
  }
}
