import { CLIENT_SCHEMAS, CorrelationId, type ClientMessage, type ErrorCode } from '../../protocol/index.js';
import { formatPath } from '../config/manifest.js';

export type Decoded =
  | { ok: true; msg: ClientMessage }
  | {
      ok: false;
      code: ErrorCode;
      message: string;
      details?: Record<string, unknown>;
      correlationId?: string;
      /** The frame's type when it had a usable one (for metrics and logs). */
      type?: string;
    };

const MAX_REPORTED_TYPE = 64;

/**
 * Parses and validates one inbound text frame. Never throws. The error keeps the frame's
 * correlationId when it had a valid one, so the client can match the error to its request.
 */
export function decode(text: string): Decoded {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'frame is not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'frame must be a JSON object' };
  }
  const obj = raw as Record<string, unknown>;
  // Most frames (relays) carry no correlationId: do not run a schema just to fail it. A failed
  // zod parse builds an error with issues, and that was ~20% of a relayed message's JS cost
  // (bench/ scenario 1 profile). The envelope schema below still validates a present one.
  const cid = obj.correlationId === undefined ? undefined : CorrelationId.safeParse(obj.correlationId);
  const correlationId = cid?.success ? cid.data : undefined;
  const withCid = correlationId === undefined ? {} : { correlationId };

  if (typeof obj.type !== 'string') {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'type: expected a string', ...withCid };
  }
  const schema = CLIENT_SCHEMAS.get(obj.type);
  if (!schema) {
    const type = obj.type.slice(0, MAX_REPORTED_TYPE);
    return {
      ok: false,
      code: 'UNKNOWN_TYPE',
      message: `unknown message type "${type}"`,
      details: { type },
      ...withCid,
    };
  }
  const parsed = schema.safeParse(obj);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue ? formatPath(issue.path) : '(root)';
    return {
      ok: false,
      code: 'INVALID_MESSAGE',
      message: `${path}: ${issue?.message ?? 'invalid'}`,
      details: { path, type: obj.type },
      ...withCid,
      type: obj.type,
    };
  }
  return { ok: true, msg: parsed.data };
}
