import { describe, expect, it } from 'vitest'
import { createSiweSessions } from './siweSessions.ts'

describe('SIWE sessions under a flood', () => {
  it('keeps at most 10,000 outstanding nonces: the oldest are forgotten, never the memory', async () => {
    const sessions = createSiweSessions({ chainId: 1 })
    const first = sessions.issueNonce().nonce
    for (let i = 0; i < 10_000; i++) sessions.issueNonce()
    const message = [
      'example.com wants you to sign in with your Ethereum account:',
      '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
      '',
      'URI: https://example.com',
      'Version: 1',
      'Chain ID: 1',
      `Nonce: ${first}`,
      `Issued At: ${new Date().toISOString()}`,
    ].join('\n')
    const result = await sessions.signIn(message, `0x${'11'.repeat(65)}`, 'example.com')
    expect(result).toMatchObject({ type: 'refused', code: 'SIWE_NONCE_UNKNOWN' })
  })
})
