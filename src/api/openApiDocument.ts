import { z } from 'zod'
import type { UseCase } from '../usecases/useCase.ts'
import {
  devicesQuerySchema,
  epochsQuerySchema,
  previewQuerySchema,
  readingsQuerySchema,
  receiptsQuerySchema,
  streamQuerySchema,
} from './apiQueries.ts'

/** One documented route of the API (path in OpenAPI's `{param}` form). */
type RouteDoc = {
  /** Default GET. */
  method?: 'post'
  path: string
  summary: string
  query?: z.ZodObject
  params?: Record<string, string>
  /** Content type of a 200 answer (default JSON). */
  produces?: string
}

/** The shared routes of the API (a use case adds its own: apiRoutes). */
export const API_ROUTES: readonly RouteDoc[] = [
  {
    path: '/v1/status',
    summary: 'The network at a glance: chain, contracts, epochs, devices, validators, gateways',
  },
  { path: '/v1/epochs', summary: 'Settled epochs, newest first', query: epochsQuerySchema },
  {
    path: '/v1/devices',
    summary: 'Registered devices (class, H3 cell, owner, status), by address',
    query: devicesQuerySchema,
  },
  {
    path: '/v1/validators',
    summary: "Each validator's stake, endpoint, last signed epoch, agreement with the quorum and liveness",
  },
  {
    path: '/v1/rewards/{account}',
    summary: "An account's cumulative rewards and the Merkle proof the RewardDistributor accepts",
    params: { account: 'a 0x address' },
  },
  {
    path: '/v1/devices/{device}/receipts',
    summary:
      "A device's receipts, newest first: per settled epoch its readings submitted, accepted and rejected by reason, the use case's measures, weight and reward, in plain words too, each with its proof against the epoch's receipts root",
    params: { device: 'a 0x address' },
    query: receiptsQuerySchema,
  },
  {
    path: '/v1/readings',
    summary:
      "Accepted readings in a time window, each with its proof against its epoch's settled readings root; where the API is a data-market provider, paid per reading (402 Payment Required without a voucher)",
    query: readingsQuerySchema,
  },
  {
    path: '/v1/devices/{device}/latest',
    summary:
      "A device's newest settled readings (at most 20), each with its proof; free even where /v1/readings is paid (the dashboard's preview)",
    params: { device: 'a 0x address' },
    query: previewQuerySchema,
  },
  {
    path: '/v1/stream',
    summary:
      "Server-sent events: each settled epoch, then a device's or an area's readings it accepted, with proofs; resumes after `since` or Last-Event-ID",
    query: streamQuerySchema,
    produces: 'text/event-stream',
  },
  {
    path: '/v1/market/consumers/{consumer}',
    summary:
      'What a data-market consumer paid: its redemptions on the DataMarket (provider, amount, cumulative amount, readings paid for, block), newest 500, and their sum',
    params: { consumer: 'a 0x address' },
  },
  { path: '/v1/map', summary: "The dashboard's map: land outline (Natural Earth) and device positions" },
  { path: '/v1/openapi.json', summary: 'This document' },
]

/** The data market's routes, served where the API is a provider (src/market/createPaywall.ts). */
export const MARKET_ROUTES: readonly RouteDoc[] = [
  {
    path: '/v1/market/nonce',
    summary: 'A one-time nonce for Sign-In with Ethereum, with the chain id and this provider',
  },
  {
    method: 'post',
    path: '/v1/market/session',
    summary:
      'Signs a consumer in: body { message, signature } of an EIP-4361 message naming this host and a fresh nonce; answers a bearer token',
  },
  {
    path: '/v1/market/channel',
    summary:
      "The signed-in consumer's channel with this provider: owed, served commitment and count, paid, redeemed, deposit, and the voucher that settles it",
  },
  {
    method: 'post',
    path: '/v1/market/vouchers',
    summary: 'Settles the channel without a new request: body, a signed voucher for exactly what was served',
  },
  {
    path: '/v1/market/served/{epoch}',
    summary:
      "The provider's served bundle of an epoch (depin-served/1, content-addressed by X-Bundle-Hash): per redemption, the readings it paid for",
    params: { epoch: 'a settled epoch' },
    produces: 'application/octet-stream',
  },
]

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } },
      required: ['code', 'message', 'details'],
    },
  },
  required: ['error'],
}

/** Every route of the API of a network of `useCase`; a test checks that the server has exactly these. */
export function apiRoutes(useCase: Pick<UseCase, 'routes'>, options: { market?: boolean } = {}): RouteDoc[] {
  return [...API_ROUTES, ...(useCase.routes ?? []), ...(options.market ? MARKET_ROUTES : [])]
}

/** The API's OpenAPI 3.1 document; query parameters come from the zod schemas that validate them. */
export function openApiDocument(
  version: string,
  useCase: Pick<UseCase, 'routes'>,
  options: { market?: boolean } = {},
) {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of apiRoutes(useCase, options)) {
    const parameters = [
      ...Object.entries(route.params ?? {}).map(([name, description]) => ({
        name,
        in: 'path',
        required: true,
        description,
        schema: { type: 'string' },
      })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, field]) => {
        const schema = z.toJSONSchema(field as z.ZodType, { io: 'input', unrepresentable: 'any' })
        delete schema.$schema
        return {
          name,
          in: 'query',
          required: !(field as z.ZodType).safeParse(undefined).success,
          ...((field as z.ZodType).description ? { description: (field as z.ZodType).description } : {}),
          schema,
        }
      }),
    ]
    paths[route.path] = {
      ...paths[route.path],
      [route.method ?? 'get']: {
        summary: route.summary,
        ...(parameters.length > 0 ? { parameters } : {}),
        responses: {
          '200': { description: 'OK', content: { [route.produces ?? 'application/json']: {} } },
          ...(parameters.length > 0
            ? {
                '400': {
                  description: 'A parameter is missing or invalid (code INVALID_QUERY, …)',
                  content: { 'application/json': { schema: errorSchema } },
                },
              }
            : {}),
        },
      },
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'depin API',
      version,
      description:
        'Read API of a depin network. Integers (amounts in wei, fixed-point values, epochs, times) are decimal strings; every reading served carries its Merkle proof against the readings root the chain settled for its epoch.',
    },
    paths,
  }
}
