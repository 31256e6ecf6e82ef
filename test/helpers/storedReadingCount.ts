import { openGatewayStore } from '../../src/gateway/gatewayStore.ts'

/** How many readings the gateway store at `database` holds, read through a store of its own. */
export async function storedReadingCount(database: string): Promise<number> {
  const store = await openGatewayStore(database)
  try {
    return await store.readingCount()
  } finally {
    await store.close()
  }
}
