import { DepinError } from '../errors.ts'

/** Reads a response body as text, refusing one larger than `limit` bytes. */
export async function readCapped(response: Response, limit: number): Promise<string> {
  return Buffer.from(await readCappedBytes(response, limit)).toString('utf8')
}

/**
 * Reads a response body, refusing one larger than `limit` bytes (`PEER_INVALID`) as soon as it
 * passes the limit: a peer or gateway cannot make a validator buffer more than that.
 */
export async function readCappedBytes(response: Response, limit: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? 0)
  if (declared > limit) {
    await response.body?.cancel()
    throw new DepinError('PEER_INVALID', `answer of ${declared} bytes, larger than ${limit}`)
  }
  if (!response.body) return new Uint8Array()
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw new DepinError('PEER_INVALID', `answer larger than ${limit} bytes`)
    }
    chunks.push(value)
  }
  const all = Buffer.concat(chunks)
  return new Uint8Array(all.buffer, all.byteOffset, all.byteLength)
}
