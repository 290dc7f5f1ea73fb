/**
 * The one catalogue of wire error codes and WebSocket close codes. Every `error` message, HTTP
 * error body and close status the server sends comes from here; `docs/errors.md` is generated
 * from it and kept in step by a test.
 *
 * `close` is set when the error can end the connection; `httpStatus` when it can be the answer
 * to an HTTP request (including a refused WebSocket upgrade). Close statuses that are not errors
 * are in {@link CLOSE_REASONS}; {@link CLOSE_CODES} is derived from both.
 */

/** A WebSocket close status: an RFC 6455 1xxx code or one of Parley's 4xxx codes. */
export interface CloseReason {
  readonly code: number;
  /** One line for docs/errors.md. */
  readonly meaning: string;
}

/** The close status an error ends a connection with; `name` is its key in CLOSE_CODES. */
export interface ErrorClose extends CloseReason {
  readonly name: string;
}

export interface ErrorSpec {
  /** Default human-readable message. Never contains tokens, secrets or SDP. */
  readonly message: string;
  /** What a client should do about it. */
  readonly hint: string;
  readonly httpStatus?: number;
  readonly close?: ErrorClose;
}

export const ERRORS = {
  UNAUTHORIZED: {
    message: 'Authentication required or failed',
    hint: 'Connect with a valid, unexpired JWT (header, ?token= or subprotocol) or send auth:request first.',
    httpStatus: 401,
    close: {
      name: 'UNAUTHORIZED',
      code: 4401,
      meaning: 'Not authenticated before the deadline, or in-band auth failed.',
    },
  },
  FORBIDDEN: {
    message: 'Not allowed',
    hint: 'Your token grants do not cover this action, or the object belongs to someone else.',
    httpStatus: 403,
  },
  INVALID_MESSAGE: {
    message: 'Malformed message',
    hint: 'Send a JSON text frame {type, payload, timestamp, correlationId}; details.path names the bad field.',
    httpStatus: 400,
  },
  UNKNOWN_TYPE: {
    message: 'Unknown message type',
    hint: 'See docs/protocol.md for the message types this server accepts.',
  },
  RATE_LIMITED: {
    message: 'Too many messages',
    hint: 'Slow down; a client that keeps sending past the limit is closed with 1008.',
    httpStatus: 429,
    close: {
      name: 'POLICY_VIOLATION',
      code: 1008,
      meaning: 'Policy violation: kept sending after RATE_LIMITED.',
    },
  },
  PAYLOAD_TOO_LARGE: {
    message: 'Frame exceeds the maximum size',
    hint: 'Keep frames under MAX_FRAME_BYTES; the connection is closed with 1009.',
    httpStatus: 413,
    // Sent by the WebSocket layer (ws maxPayload = MAX_FRAME_BYTES).
    close: { name: 'MESSAGE_TOO_BIG', code: 1009, meaning: 'Frame larger than MAX_FRAME_BYTES.' },
  },
  TOO_MANY_CONNECTIONS: {
    message: 'Too many connections from this address',
    hint: 'Close idle connections; the per-address limit is MAX_CONNECTIONS_PER_IP.',
    httpStatus: 429,
  },
  QUOTA_EXCEEDED: {
    message: 'Quota exceeded',
    hint: 'You hold as many of these as one user or session may (details.quota names which, details.limit the limit): leave a room, close a transport or a session first.',
    httpStatus: 429,
    // A new session of a user whose MAX_SESSIONS_PER_USER sessions are all live.
    close: {
      name: 'QUOTA_EXCEEDED',
      code: 4429,
      meaning:
        'Too many sessions of this user, all live (MAX_SESSIONS_PER_USER); close one first. Do not reconnect automatically at once.',
    },
  },
  ROOM_NOT_FOUND: {
    message: 'Room not found',
    hint: 'Join a channel listed by GET /api/station; this station does not allow ad-hoc rooms.',
    httpStatus: 404,
  },
  ROOM_FULL: {
    message: 'Room is full',
    hint: 'The room has reached its maxParticipants; try again later.',
  },
  NOT_IN_ROOM: {
    message: 'Not a member of this room',
    hint: 'Send room:join first; in-room relay only reaches members of the same room.',
    httpStatus: 404,
  },
  RECIPIENT_OFFLINE: {
    message: 'Recipient is not connected',
    hint: 'The user has no live connection; retry later or show them as offline.',
    httpStatus: 404,
  },
  CALL_ANSWERED_ELSEWHERE: {
    message: 'The call was answered on another device',
    hint: 'Another session of yours accepted or declined this call first (or placed it); stop ringing. Only that session may act on the call.',
  },
  CALL_NOT_ALLOWED: {
    message: 'You may not call this user',
    hint: 'With CALL_POLICY=shared-room (the default) a call:offer only rings users who share a room with you; join one of their rooms first. Given whether or not the user is online.',
    httpStatus: 403,
  },
  CALL_NOT_FOUND: {
    message: 'No such call between you and this user',
    hint: 'call:answer, call:accept, call:reject and call:hangup need a call that a call:offer started between the two of you (ICE candidates for no call are dropped silently). A call that has ended (hung up, rejected, or one side left for good: the other heard call:hangup "disconnected") stays ended: its late offers, answers and accepts get this error with details.ended = true (start a new call with a new callId); its late candidates and hang-ups are dropped silently.',
    httpStatus: 404,
  },
  RELAY_BUDGET_EXCEEDED: {
    message: 'Too much relayed to this recipient',
    hint: 'Each recipient takes a bounded number of relayed messages and bytes per second from one sender; the message was not delivered. Send less, or smaller, and retry later.',
    httpStatus: 429,
  },
  RESUME_FAILED: {
    message: 'Session cannot be resumed',
    hint: 'The resume token is unknown, used, expired or not yours; join your rooms again instead.',
  },
  TRANSPORT_ERROR: {
    message: 'Transport operation failed',
    hint: 'Create a new transport; check the transport id and DTLS parameters.',
  },
  PRODUCE_ERROR: {
    message: 'Produce failed',
    hint: 'Check the transport id, kind and RTP parameters against the router capabilities.',
  },
  CONSUME_ERROR: {
    message: 'Consume failed',
    hint: 'Check the producer id and that your RTP capabilities can consume it.',
  },
  CAPACITY_EXCEEDED: {
    message: 'Media capacity exceeded',
    hint: 'Every SFU worker is at its consumer budget; new listeners are refused so existing ones keep clean audio. Retry later or add nodes.',
    httpStatus: 503,
  },
  NOT_PTT_ROOM: {
    message: 'Not a push-to-talk room',
    hint: 'ptt:start and ptt:stop only apply to rooms whose mode is "ptt".',
    httpStatus: 409,
  },
  NOT_CONFERENCE_ROOM: {
    message: 'Not a conference room',
    hint: 'Muting through the server API applies to conference rooms; in a ptt room revoke the floor instead.',
    httpStatus: 409,
  },
  SERVICE_UNAVAILABLE: {
    message: 'Service temporarily unavailable',
    hint: 'The server is starting, draining or has lost a backend; retry with backoff.',
    httpStatus: 503,
    // A backend the server needs (e.g. Redis) is unavailable when a session would open.
    close: {
      name: 'TRY_AGAIN_LATER',
      code: 1013,
      meaning: 'A backend is temporarily unavailable; reconnect with backoff.',
    },
  },
  NOT_FOUND: {
    message: 'Not found',
    hint: 'Check the path; see README for the HTTP API.',
    httpStatus: 404,
  },
  RECORDING_NOT_FOUND: {
    message: 'Recording not found',
    hint: 'The id is unknown, or the recording was deleted (retention or RECORDINGS_MAX_BYTES); list GET /api/rooms/:roomId/recordings again.',
    httpStatus: 404,
  },
  RANGE_NOT_SATISFIABLE: {
    message: 'Range not satisfiable',
    hint: 'Ask for one byte range inside the file (Content-Range of a 416 gives its size), e.g. Range: bytes=0-1023.',
    httpStatus: 416,
  },
  METHOD_NOT_ALLOWED: {
    message: 'Method not allowed',
    hint: 'The HTTP API answers GET, HEAD and OPTIONS (the server API under /api/admin/ also POST and DELETE); the Allow header lists them.',
    httpStatus: 405,
  },
  UPGRADE_REQUIRED: {
    message: 'WebSocket upgrade required',
    hint: 'Open /ws with a WebSocket client (Upgrade: websocket), not a plain HTTP request.',
    httpStatus: 426,
  },
  INTERNAL: {
    message: 'Internal server error',
    hint: 'A bug on our side; the server logged the details. Retry the request.',
    httpStatus: 500,
    close: { name: 'INTERNAL_ERROR', code: 1011, meaning: 'Unexpected server error.' },
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERRORS, value);
}

/**
 * Extra context of an error. `path` names the bad field of an INVALID_MESSAGE, `type` the unknown
 * type of an UNKNOWN_TYPE; other keys are code-specific.
 */
export interface ErrorDetails {
  path?: string;
  type?: string;
  [key: string]: unknown;
}

/**
 * The wire shape of an error, the same over WebSocket and HTTP: the payload of an `error` message,
 * and the `error` of an HTTP error body. The server builds it with {@link errorBody}; the SDK
 * parses it into its ParleyError. (The `error` message's Zod schema is checked against it.)
 */
export interface ErrorBody {
  code: ErrorCode;
  /** For humans; may change. Never contains tokens, secrets, SDP or a dependency's own error text. */
  message: string;
  details?: ErrorDetails;
}

/** The body of every HTTP error response, including a refused WebSocket upgrade. */
export interface HttpErrorBody {
  error: ErrorBody;
}

/** Builds an ErrorBody; `message` defaults to the catalogue's. */
export function errorBody(code: ErrorCode, message?: string, details?: ErrorDetails): ErrorBody {
  return { code, message: message ?? ERRORS[code].message, ...(details ? { details } : {}) };
}

type Errors = typeof ERRORS;
/** The errors that can end a connection, i.e. that carry a close status. */
export type ClosingErrorCode = {
  [K in ErrorCode]: Errors[K] extends { readonly close: ErrorClose } ? K : never;
}[ErrorCode];

/** The close status a connection ended for `code` gets. */
export function closeCodeOf(code: ClosingErrorCode): number {
  return ERRORS[code].close.code;
}

/** Close statuses that are not errors. Those of errors are in ERRORS[code].close. */
export const CLOSE_REASONS = {
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
  /**
   * The client did not read fast enough: its send buffer passed MAX_BUFFERED_BYTES. Sent without an
   * `error` message first, since the client is not reading.
   */
  BACKPRESSURE: { code: 4008, meaning: 'Client too slow to read; send buffer exceeded MAX_BUFFERED_BYTES.' },
  /** The session was resumed from another connection; this one is stale. */
  SESSION_REPLACED: { code: 4409, meaning: 'Session resumed on another connection.' },
  /**
   * The server API removed the participant (docs/server-api.md): the session is ended, not
   * resumable, and the same token cannot join that room again. Do not reconnect automatically.
   */
  REMOVED: {
    code: 4410,
    meaning:
      'Removed by the server API; rejoining that room needs a new token. Do not reconnect automatically.',
  },
} as const satisfies Record<string, CloseReason>;

type ErrorCloses = {
  readonly [K in ClosingErrorCode as Errors[K]['close']['name']]: {
    readonly code: Errors[K]['close']['code'];
    readonly meaning: Errors[K]['close']['meaning'];
  };
};

/**
 * Every WebSocket close status the server sends, by name, in code order: the non-error
 * {@link CLOSE_REASONS} and the close statuses of the errors in {@link ERRORS}.
 */
export const CLOSE_CODES = Object.fromEntries(
  [
    ...Object.entries(CLOSE_REASONS),
    ...Object.values(ERRORS).flatMap((spec: ErrorSpec) =>
      spec.close ? [[spec.close.name, { code: spec.close.code, meaning: spec.close.meaning }] as const] : [],
    ),
  ].sort(([, a], [, b]) => a.code - b.code),
) as unknown as typeof CLOSE_REASONS & ErrorCloses;

export type CloseCodeName = keyof typeof CLOSE_CODES;
