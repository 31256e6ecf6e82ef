/**
 * The one error base of depin: a short message, a stable string `code` for machines, `details`
 * for humans and logs (never a key or secret), the `cause`, and whether retrying can help.
 */
export class DepinError extends Error {
  override readonly name: string = 'DepinError'
  readonly code: string
  readonly details: Record<string, unknown>
  readonly retryable: boolean

  constructor(
    code: string,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
    this.retryable = options.retryable ?? false
  }
}

/** Configuration or input that can never work as given; retrying does not help. */
export class ConfigError extends DepinError {
  override readonly name = 'ConfigError'
}

/** A chain node, process or connection failed; retrying may help. */
export class ChainError extends DepinError {
  override readonly name = 'ChainError'
  constructor(
    code: string,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, { ...options, retryable: true })
  }
}
