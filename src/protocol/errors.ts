/**
 * The one catalogue of wire error codes. Every `error` message, HTTP error body and
 * application close reason comes from here; `docs/errors.md` is kept in step by a test.
 *
 * `closeCode` is set when the error ends the connection; `httpStatus` when it can be
 * the answer to an HTTP request (including a refused WebSocket upgrade).
 */
export interface ErrorSpec {
  /** Default human-readable message. Never contains tokens, secrets or SDP. */
  readonly message: string;
  /** What a client should do about it. */
  readonly hint: string;
  readonly httpStatus?: number;
  readonly closeCode?: number;
}

export const ERRORS = {
  UNAUTHORIZED: {
    message: 'Authentication required or failed',
    hint: 'Connect with a valid, unexpired JWT (header, ?token= or subprotocol) or send auth:request first.',
    httpStatus: 401,
    closeCode: 4401,
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
    closeCode: 1008,
  },
  PAYLOAD_TOO_LARGE: {
    message: 'Frame exceeds the maximum size',
    hint: 'Keep frames under MAX_FRAME_BYTES; the connection is closed with 1009.',
    httpStatus: 413,
    closeCode: 1009,
  },
  TOO_MANY_CONNECTIONS: {
    message: 'Too many connections from this address',
    hint: 'Close idle connections; the per-address limit is MAX_CONNECTIONS_PER_IP.',
    httpStatus: 429,
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
  },
  RECIPIENT_OFFLINE: {
    message: 'Recipient is not connected',
    hint: 'The user has no live connection; retry later or show them as offline.',
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
  },
  SERVICE_UNAVAILABLE: {
    message: 'Service temporarily unavailable',
    hint: 'The server is starting, draining or has lost a backend; retry with backoff.',
    httpStatus: 503,
  },
  NOT_FOUND: {
    message: 'Not found',
    hint: 'Check the path; see README for the HTTP API.',
    httpStatus: 404,
  },
  INTERNAL: {
    message: 'Internal server error',
    hint: 'A bug on our side; the server logged the details. Retry the request.',
    httpStatus: 500,
    closeCode: 1011,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERRORS, value);
}
