import { CLOSE_CODES } from '../protocol/close-codes.js';
import { ParleyError } from './errors.js';

/** Turns a close event into the error that explains it (and decides whether to retry). */
export function classifyClose(
  code: number,
  reason: string,
  opened: boolean,
  errorText?: string,
): ParleyError {
  const details = { closeCode: code, ...(reason ? { closeReason: reason } : {}) };
  // Node's `ws` reports a refused upgrade as "Unexpected server response: 401"; browsers cannot see it.
  const status = errorText ? /Unexpected server response: (\d{3})/.exec(errorText)?.[1] : undefined;
  if (status === '401') return new ParleyError('UNAUTHORIZED', 'the server refused the token (HTTP 401)');
  if (status === '429') return new ParleyError('TOO_MANY_CONNECTIONS', undefined, { details });
  if (status === '503') return new ParleyError('SERVICE_UNAVAILABLE', 'the server is draining', { details });
  switch (code) {
    case CLOSE_CODES.UNAUTHORIZED.code:
      return new ParleyError(
        'UNAUTHORIZED',
        `the server refused the token (close 4401${reason ? `: ${reason}` : ''})`,
        { details },
      );
    case CLOSE_CODES.SESSION_REPLACED.code:
      return new ParleyError('SESSION_REPLACED', undefined, { details });
    case CLOSE_CODES.REMOVED.code:
      return new ParleyError('REMOVED', undefined, { details });
    case CLOSE_CODES.GOING_AWAY.code:
      return new ParleyError('SERVICE_UNAVAILABLE', 'the server is shutting down', { details });
    case CLOSE_CODES.QUOTA_EXCEEDED.code:
      return new ParleyError('QUOTA_EXCEEDED', 'too many sessions of this user are open', { details });
    case CLOSE_CODES.POLICY_VIOLATION.code:
      return new ParleyError('RATE_LIMITED', 'closed for sending too fast', { details });
    case CLOSE_CODES.MESSAGE_TOO_BIG.code:
      return new ParleyError('PAYLOAD_TOO_LARGE', undefined, { details });
    default:
      if (!opened) {
        return new ParleyError(
          'CONNECTION_FAILED',
          'could not open the WebSocket (server unreachable, or the token was refused)',
          { details },
        );
      }
      return new ParleyError('DISCONNECTED', `connection closed (${code}${reason ? `: ${reason}` : ''})`, {
        details,
      });
  }
}
