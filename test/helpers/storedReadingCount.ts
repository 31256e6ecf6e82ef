import { createGatewayStore } from '../../src/gateway/gatewayStore.ts'

/** How many readings the gateway store at `dbPath` holds, read through a store of its own. */
export function storedReadingCount(dbPath: string): number {
  const store = createGatewayStore(dbPath)
  try {
    return store.readingCount()
  } finally {
    store.close()
  }
}
