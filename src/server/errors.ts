import { ERRORS, type ErrorCode, type ErrorDetails } from '../protocol/index.js';

/**
 * A refusal a handler throws; the dispatcher turns it into an `error` reply (an ErrorBody, the
 * wire shape shared with the SDK) carrying the request's correlationId. Anything else thrown is a bug and becomes INTERNAL (details only in logs).
 */
export class ParleyError extends Error {
  override name = 'ParleyError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message?: string, details?: ErrorDetails) {
    super(message ?? ERRORS[code].message);
    this.code = code;
    this.details = details;
  }
}
