import { join } from 'node:path'
import type { Account } from 'viem'
import { z } from 'zod'
import { listGateway } from '../chain/listGateway.ts'
import { createGateway } from '../gateway/createGateway.ts'
import { createMqttIngest, type MqttIngest } from '../gateway/createMqttIngest.ts'
import { createContext, installProcessHandlers, untilAborted } from '../protocol/context.ts'
import { roleDatabase } from '../protocol/sqlDatabase.ts'
import { DEFAULT_TOPIC_PREFIX } from '../readings/readingTopics.ts'
import type { DigestSigner } from '../readings/signGatewayVerdict.ts'
import { readJsonFile, resolveConfigPaths } from '../readJsonFile.ts'
import { advertisedUrlOf, indexerFollowingSchema, openRoleContext } from './openRoleContext.ts'

/** The config file of one gateway process; relative paths are relative to the file. */
export const gatewayConfigSchema = z.object({
  /** The gateway's own directory: its SQLite store and indexer live here. */
  dataDir: z.string(),
  rpcUrl: z.string().url(),
  blueprint: z.string(),
  /** The deployment file of the network. */
  deployment: z.string(),
  host: z.string().default('127.0.0.1'),
  /** Port of `POST /v1/readings` and the sealed batches; 0 takes a free one. */
  port: z.number().int().min(0).max(65535),
  /** A broker to take readings from too (e.g. mqtt://127.0.0.1:1883); none: HTTP only. */
  mqttUrl: z.string().url().optional(),
  mqttTopicPrefix: z.string().min(1).default(DEFAULT_TOPIC_PREFIX),
  /** MQTT client id; keep it fixed so the broker keeps the session (default from the key, or the port). */
  mqttClientId: z.string().min(1).max(128).optional(),
  /**
   * The gateway operator's key file (0x + 64 hex, mode 0600): its address is the gateway's id on
   * the registry's list; the gateway signs its verdicts with it (devices believe only a listed
   * gateway's signed verdicts) and corrects its listed URL to `advertiseUrl`. Without it, its
   * answers are unsigned and devices keep their readings queued.
   */
  keyFile: z.string().optional(),
  /** Where validators reach this gateway; default http://host:port. */
  advertiseUrl: z.string().url().optional(),
  /** Worker threads checking signatures (default: one per core; 0 checks on the main thread). */
  signatureThreads: z.number().int().min(0).optional(),
  /**
   * Its store in PostgreSQL (postgres://…, `?schema=` default `gateway`); default the
   * environment's DATABASE_URL, else dataDir/gateway.db (SQLite).
   */
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
    .optional(),
  /** How its indexer follows the chain: { confirmations | blockTag: 'safe' | 'finalized', finality } (reorg safety). */
  indexer: indexerFollowingSchema,
})
export type GatewayConfig = z.output<typeof gatewayConfigSchema>

/** Reads and validates a gateway config file; errors name the file and the field. */
export function readGatewayConfig(path: string): GatewayConfig {
  return resolveConfigPaths(
    path,
    readJsonFile(path, gatewayConfigSchema, 'GATEWAY_CONFIG_INVALID', 'gateway config'),
    ['dataDir', 'blueprint', 'deployment', 'keyFile'],
  )
}

/**
 * `depin gateway run --config FILE`: one gateway as a process of its own: `POST /v1/readings`,
 * the MQTT ingest when `mqttUrl` is set, sealed batches for the validators, an indexer for the
 * registry it checks devices against; its verdicts signed with the operator's key. Logs one
 * JSON line per event (never the key; `error` with a code for each failure it carries on
 * after); stops cleanly on SIGINT/SIGTERM. Readings it acknowledged are in its store (SQLite or
 * PostgreSQL) before the acknowledgement, so a crash loses none of them.
 */
export async function runGatewayProcess(options: { config: string }): Promise<void> {
  const config = readGatewayConfig(options.config)
  // one context for the process: its logger, its shutdown signal, loud on what would kill it
  const context = createContext({ role: 'gateway' })
  const uninstall = installProcessHandlers(context)
  const logLine = context.log
  const { blueprint, deployment, clients, indexer } = await openRoleContext(config, context)
  const account = clients.account
  // the key from keyFile is a local account: it signs the digests of the gateway's verdicts
  const operator = account && 'sign' in account && account.sign ? (account as DigestSigner) : undefined
  const gateway = await createGateway({
    blueprint,
    deployment,
    devices: indexer.store,
    database: roleDatabase(config.databaseUrl, join(config.dataDir, 'gateway.db'), 'gateway'),
    host: config.host,
    port: config.port,
    onSealed: (batch) =>
      logLine('epoch_sealed', { epoch: batch.epoch, hash: batch.hash, readings: batch.count }),
    context,
    ...(operator ? { operator } : {}),
    ...(config.signatureThreads === undefined ? {} : { signatureThreads: config.signatureThreads }),
  })
  await gateway.start()
  const id = account ? (account as Account).address : undefined

  let mqttIngest: MqttIngest | undefined
  if (config.mqttUrl) {
    mqttIngest = createMqttIngest({
      gateway,
      brokerUrl: config.mqttUrl,
      topicPrefix: config.mqttTopicPrefix,
      clientId: config.mqttClientId ?? `depin-gateway-${id ? id.toLowerCase() : `port-${config.port}`}`,
      onConnection: (event) =>
        logLine(event.type === 'lost' ? 'mqtt_lost' : 'mqtt_restored', { broker: config.mqttUrl }),
      onError: ({ code, message }) => context.logger.error({ event: 'error', code, message }),
    })
    await mqttIngest.start()
  }

  // where validators fetch the batches: corrected on the registry's list when it says otherwise
  const advertiseUrl = advertisedUrlOf(config.host, config.advertiseUrl, gateway.url)
  const done =
    id && advertiseUrl
      ? await listGateway({ sender: clients, deployment, gateway: id, url: advertiseUrl, add: false })
      : 'no key'
  const listed = done === 'unchanged' ? 'listed' : done === 'changed' ? 'url changed' : done
  logLine('gateway_started', {
    id: id ?? null,
    url: gateway.url,
    advertised: advertiseUrl ?? null,
    listed,
    mqtt: config.mqttUrl ?? null,
    signed: operator !== undefined,
    ...(listed === 'not listed'
      ? {
          hint: `devices ignore its verdicts until governance lists it: depin gateway set --id ${id} --url ${advertiseUrl}`,
        }
      : !operator
        ? { hint: 'without keyFile its verdicts are unsigned: devices keep their readings queued' }
        : {}),
  })

  await untilAborted(context.shutdown)
  logLine('gateway_stopping', {})
  await mqttIngest?.stop()
  await gateway.stop()
  await indexer.stop()
  logLine('gateway_stopped', { ...gateway.stats() })
  uninstall()
}
