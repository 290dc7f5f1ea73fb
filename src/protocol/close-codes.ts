/**
 * WebSocket close codes the server uses. 1xxx are RFC 6455 codes; 4xxx are Parley's own.
 * Documented in docs/errors.md, kept in step by a test.
 */
export const CLOSE_CODES = {
  /** Client closed normally, or the server ended the session on purpose. */
  NORMAL: { code: 1000, meaning: 'Normal closure.' },
  /** Server is shutting down; reconnect after the `server:shutdown` hint. */
  GOING_AWAY: { code: 1001, meaning: 'Server shutting down; reconnect after the server:shutdown hint.' },
  /**
   * Broken WebSocket framing (reserved opcode or bits, unmasked or continuation-less frame, oversized or
   * fragmented control frame, bad close frame). Sent by the WebSocket layer (ws); listed here because the
   * server does send it: the hardening fuzz (test/hardening) found it missing from the catalogue.
   */
  PROTOCOL_ERROR: { code: 1002, meaning: 'Malformed WebSocket framing (RFC 6455 protocol error).' },
  /** A text frame that is not valid UTF-8 (sent by the WebSocket layer, like 1002). */
  INVALID_PAYLOAD: { code: 1007, meaning: 'Text frame is not valid UTF-8.' },
  /** Policy violation: the client kept flooding after RATE_LIMITED, or sent binary frames repeatedly. */
  POLICY_VIOLATION: { code: 1008, meaning: 'Policy violation: kept sending after RATE_LIMITED.' },
  /** Frame larger than MAX_FRAME_BYTES. */
  MESSAGE_TOO_BIG: { code: 1009, meaning: 'Frame larger than MAX_FRAME_BYTES.' },
  /** A backend the server needs (e.g. Redis) is unavailable: reconnect with backoff. */
  TRY_AGAIN_LATER: { code: 1013, meaning: 'A backend is temporarily unavailable; reconnect with backoff.' },
  /** Unexpected server error. */
  INTERNAL_ERROR: { code: 1011, meaning: 'Unexpected server error.' },
  /** The client did not read fast enough: its send buffer passed MAX_BUFFERED_BYTES. */
  BACKPRESSURE: { code: 4008, meaning: 'Client too slow to read; send buffer exceeded MAX_BUFFERED_BYTES.' },
  /** No valid auth:request before the auth deadline, or authentication failed in-band. */
  UNAUTHORIZED: { code: 4401, meaning: 'Not authenticated before the deadline, or in-band auth failed.' },
  /** The session was resumed from another connection; this one is stale. */
  SESSION_REPLACED: { code: 4409, meaning: 'Session resumed on another connection.' },
} as const;

export type CloseCodeName = keyof typeof CLOSE_CODES;
