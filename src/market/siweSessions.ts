/**
 * Consumers sign in with their wallet: Sign-In with Ethereum (EIP-4361). The provider hands out a
 * one-time nonce; the consumer signs a SIWE message naming the API's host, this chain and the
 * nonce; the provider checks it and returns a bearer token for the session. No passwords, no API
 * secrets: the session is the wallet that signs the vouchers.
 *
 * Messages are parsed and validated with viem's EIP-4361 implementation (`viem/siwe`): the `siwe`
 * package needs ethers as a peer, which depin does not otherwise ship.
 */
import { randomBytes } from 'node:crypto'
import { type Address, getAddress, type Hex, recoverMessageAddress } from 'viem'
import { generateSiweNonce, parseSiweMessage, validateSiweMessage } from 'viem/siwe'

/** Outstanding nonces kept at most (a flood of nonce requests evicts the oldest). */
const MAX_NONCES = 10_000
/** Sessions kept at most (the oldest goes first). */
const MAX_SESSIONS = 100_000
/** Longest SIWE message accepted, in characters. */
export const MAX_SIWE_MESSAGE_LENGTH = 4_096

export type SiweSessionsOptions = {
  chainId: number
  /** How long a nonce may wait for its sign-in, ms (default 5 minutes). */
  nonceTtlMs?: number
  /** How long a session lasts, ms (default 1 hour), unless the message expires sooner. */
  sessionTtlMs?: number
  now?: () => number
}

export type SignInResult =
  | { type: 'signedIn'; token: string; address: Address; expiresAt: number }
  | { type: 'refused'; code: SignInRefusal; message: string }

export type SignInRefusal =
  | 'SIWE_MESSAGE_INVALID'
  | 'SIWE_NONCE_UNKNOWN'
  | 'SIWE_DOMAIN_MISMATCH'
  | 'SIWE_CHAIN_MISMATCH'
  | 'SIWE_EXPIRED'
  | 'SIWE_SIGNATURE_INVALID'

export type SessionResult =
  | { type: 'session'; address: Address }
  | { type: 'none'; code: 'SESSION_REQUIRED' | 'SESSION_INVALID' | 'SESSION_EXPIRED' }

export function createSiweSessions(options: SiweSessionsOptions) {
  const now = options.now ?? Date.now
  const nonceTtl = options.nonceTtlMs ?? 5 * 60_000
  const sessionTtl = options.sessionTtlMs ?? 60 * 60_000
  // insertion-ordered: the first entries are the oldest
  const nonces = new Map<string, number>()
  const sessions = new Map<string, { address: Address; expiresAt: number }>()

  const refuse = (code: SignInRefusal, message: string): SignInResult => ({ type: 'refused', code, message })

  return {
    /** A fresh one-time nonce for a sign-in. */
    issueNonce(): { nonce: string; expiresAt: number } {
      const nonce = generateSiweNonce()
      const expiresAt = now() + nonceTtl
      nonces.set(nonce, expiresAt)
      while (nonces.size > MAX_NONCES) nonces.delete(nonces.keys().next().value as string)
      return { nonce, expiresAt }
    },

    /**
     * Checks a signed SIWE message: well formed, for `host` (the Host the consumer reached the API
     * at) and this chain, within its validity, with a nonce this provider issued and not yet used,
     * signed by the address it names. The nonce is spent whatever the outcome past its lookup.
     */
    async signIn(message: string, signature: Hex, host: string): Promise<SignInResult> {
      if (message.length > MAX_SIWE_MESSAGE_LENGTH) return refuse('SIWE_MESSAGE_INVALID', 'message too long')
      let parsed: ReturnType<typeof parseSiweMessage>
      try {
        parsed = parseSiweMessage(message)
      } catch {
        return refuse('SIWE_MESSAGE_INVALID', 'not an EIP-4361 message')
      }
      if (!parsed.address || !parsed.nonce || !parsed.domain || parsed.version !== '1') {
        return refuse('SIWE_MESSAGE_INVALID', 'the message lacks its address, domain, nonce or version 1')
      }
      const nonceExpiry = nonces.get(parsed.nonce)
      if (nonceExpiry === undefined || nonceExpiry < now()) {
        nonces.delete(parsed.nonce)
        return refuse('SIWE_NONCE_UNKNOWN', 'the nonce was not issued here, was used, or expired')
      }
      nonces.delete(parsed.nonce)
      if (parsed.domain !== host) {
        return refuse('SIWE_DOMAIN_MISMATCH', `the message is for ${parsed.domain}, this API is ${host}`)
      }
      if (parsed.chainId !== options.chainId) {
        return refuse(
          'SIWE_CHAIN_MISMATCH',
          `the message is for chain ${parsed.chainId}, this network is ${options.chainId}`,
        )
      }
      if (!validateSiweMessage({ message: parsed, time: new Date(now()) })) {
        return refuse('SIWE_EXPIRED', 'the message is not valid at this time')
      }
      let signer: Address
      try {
        signer = await recoverMessageAddress({ message, signature })
      } catch {
        return refuse('SIWE_SIGNATURE_INVALID', 'the signature is malformed')
      }
      if (getAddress(signer) !== getAddress(parsed.address)) {
        return refuse('SIWE_SIGNATURE_INVALID', 'the message was not signed by the address it names')
      }
      const token = randomBytes(32).toString('base64url')
      const expiresAt = Math.min(
        now() + sessionTtl,
        parsed.expirationTime?.getTime() ?? Number.POSITIVE_INFINITY,
      )
      sessions.set(token, { address: getAddress(parsed.address), expiresAt })
      while (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string)
      return { type: 'signedIn', token, address: getAddress(parsed.address), expiresAt }
    },

    /** The session an `Authorization: Bearer <token>` header names. */
    sessionOf(authorization: string | undefined): SessionResult {
      if (!authorization) return { type: 'none', code: 'SESSION_REQUIRED' }
      const match = /^Bearer ([A-Za-z0-9_-]{43})$/.exec(authorization)
      const session = match ? sessions.get(match[1] as string) : undefined
      if (!session) return { type: 'none', code: 'SESSION_INVALID' }
      if (session.expiresAt <= now()) {
        sessions.delete(match?.[1] as string)
        return { type: 'none', code: 'SESSION_EXPIRED' }
      }
      return { type: 'session', address: session.address }
    },
  }
}

export type SiweSessions = ReturnType<typeof createSiweSessions>
