/**
 * Prints one JSON log line of a depin process: `{ time, event, ...fields }`, bigints as
 * decimal strings. Never pass a key or a secret.
 */
export const logLine = (event: string, fields: Record<string, unknown>) =>
  console.log(
    JSON.stringify({ time: new Date().toISOString(), event, ...fields }, (_, v) =>
      typeof v === 'bigint' ? v.toString() : v,
    ),
  )
