import { ERRORS, type ErrorCode } from '../protocol/index.js';

/**
 * A refusal a handler throws; the dispatcher turns it into an `error` reply carrying the request's
 * correlationId. Anything else thrown is a bug and becomes INTERNAL (details only in logs).
 */
export class ParleyError extends Error {
  override name = 'ParleyError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? ERRORS[code].message);
    this.code = code;
    this.details = details;
  }
}
