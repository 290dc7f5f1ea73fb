import { ERRORS, isErrorCode, type ErrorBody, type ErrorCode } from '../protocol/errors.js';

/**
 * Errors that arise in the SDK itself rather than on the server. Server codes come from the one
 * catalogue in `src/protocol/errors.ts` (docs/errors.md); these complete it on the client side.
 */
export const CLIENT_ERRORS = {
  TIMEOUT: { message: 'The server did not answer in time', retryable: true },
  DISCONNECTED: { message: 'The connection dropped before the server answered', retryable: true },
  CONNECTION_FAILED: { message: 'Could not connect to the server', retryable: true },
  CLOSED: { message: 'The client was closed', retryable: false },
  INVALID_URL: { message: 'The server URL is not one of the accepted forms', retryable: false },
  INVALID_TOKEN: {
    message: 'The token option gave no token (a JWT, or {token} as /api/dev-token answers)',
    retryable: false,
  },
  SESSION_REPLACED: { message: 'This session was resumed on another connection', retryable: false },
  REMOVED: {
    message: 'Removed by the server API (close 4410); rejoining needs a new token',
    retryable: false,
  },
  PROTOCOL_ERROR: { message: 'The server sent something this SDK does not understand', retryable: false },
  MEDIA_ERROR: { message: 'Microphone or WebRTC failure', retryable: false },
  CALL_FAILED: { message: 'The call could not be established', retryable: true },
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERRORS;
/** Every code a {@link ParleyError} can carry: the server's catalogue plus the client's own. */
export type ParleyErrorCode = ErrorCode | ClientErrorCode;

/** Server codes worth retrying after a back-off (the request itself was fine). */
const RETRYABLE_SERVER_CODES: ReadonlySet<ErrorCode> = new Set([
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'CAPACITY_EXCEEDED',
  'INTERNAL',
]);

/**
 * The one error class of the SDK. `code` is stable (switch on it); `reason` is the human-readable
 * explanation (the server's message for server errors). Never carries tokens or SDP.
 */
export class ParleyError extends Error {
  override name = 'ParleyError';
  readonly code: ParleyErrorCode;
  readonly reason: string;
  /** Extra structured context, e.g. `details.path` of an INVALID_MESSAGE, or `closeCode`. */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** True when trying again later may succeed (timeouts, drops, overload). */
  readonly retryable: boolean;

  constructor(
    code: ParleyErrorCode,
    reason?: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    const text = reason ?? defaultReason(code);
    super(`${code}: ${text}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = text;
    this.details = options.details;
    this.retryable = isClientCode(code) ? CLIENT_ERRORS[code].retryable : RETRYABLE_SERVER_CODES.has(code);
  }

  /**
   * The error the server sent, as an `error` message's payload or an HTTP error body's `error`
   * (the wire shape shared with the server): its code, its message as `reason`, its details.
   */
  static fromBody(body: ErrorBody): ParleyError {
    return new ParleyError(body.code, body.message, body.details ? { details: body.details } : {});
  }

  /** Wraps anything thrown into a ParleyError (an existing one is returned as is). */
  static from(err: unknown, code: ParleyErrorCode = 'MEDIA_ERROR'): ParleyError {
    if (err instanceof ParleyError) return err;
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return new ParleyError(code, reason, { cause: err });
  }
}

function isClientCode(code: ParleyErrorCode): code is ClientErrorCode {
  return Object.hasOwn(CLIENT_ERRORS, code);
}

function defaultReason(code: ParleyErrorCode): string {
  if (isClientCode(code)) return CLIENT_ERRORS[code].message;
  return isErrorCode(code) ? ERRORS[code].message : code;
}
