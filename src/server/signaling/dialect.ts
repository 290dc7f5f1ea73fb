import {
  CALL_RELAY_TYPES,
  type CallRelayType,
  type ErrorBody,
  type ServerMessageType,
} from '../../protocol/index.js';
import type { Correlation, Frame } from '../wire/frame.js';

/**
 * A connection's dialect: the wire of an earlier system that the connection chose to speak
 * (docs/migration.md), translated at the codec edge so that nothing behind it knows. A connection
 * without one (the default) pays one null check per frame.
 */
export interface Dialect {
  readonly name: string;
  /** Parley's type for an inbound type name: the name itself when the dialect does not rename it. */
  inbound(type: string): string;
  /** The frame as this connection must receive it: `f` itself when the dialect leaves it alone. */
  outbound(f: Frame): Frame;
  /**
   * The dialect's own frame for an error that answers a message of Parley type `about.type`
   * (`about.payload` as received), or null to send Parley's `error`.
   */
  error(body: ErrorBody, about: ErrorSubject, correlation?: Correlation): Frame | null;
}

export interface ErrorSubject {
  type: string;
  payload?: unknown;
}

const CALL_TYPES: ReadonlySet<string> = new Set<string>(CALL_RELAY_TYPES);
const V0_TO_PARLEY: ReadonlyMap<string, CallRelayType> = new Map(
  CALL_RELAY_TYPES.map((t) => [t.replace(':', '-'), t]),
);
/** Our encoder writes `type` first, so a relayed call frame starts with exactly these bytes. */
const CALL_PREFIX = Buffer.from('{"type":"call:');
const COLON_AT = CALL_PREFIX.length - 1;
const HYPHEN = 0x2d;

/**
 * The 1:1 calls service's wire (`parley.v0-calls`): `call-offer`, `call-answer`,
 * `call-ice-candidate`, `call-accept`, `call-reject`, `call-hangup` in both directions, with
 * Parley's payloads; and `call-error {callId, recipientId, error: "recipient_offline", …}` instead
 * of `error` for whatever refuses one of them. Everything else is Parley's protocol unchanged.
 */
export const callsV0: Dialect = {
  name: 'v0-calls',
  inbound: (type) => V0_TO_PARLEY.get(type) ?? type,
  outbound(f) {
    if (!CALL_TYPES.has(f.type)) return f;
    const data = Buffer.from(f.data); // the frame may be shared with other sockets: copy
    if (data.subarray(0, CALL_PREFIX.length).equals(CALL_PREFIX)) data[COLON_AT] = HYPHEN;
    else {
      // Not from our encoder (never expected): rename through JSON rather than guess at bytes.
      const msg = JSON.parse(f.data.toString('utf8')) as { type: string };
      return {
        type: f.type,
        data: Buffer.from(JSON.stringify({ ...msg, type: msg.type.replace(':', '-') })),
      };
    }
    return { type: f.type, data };
  },
  error(body, about, correlation) {
    if (!CALL_TYPES.has(about.type)) return null;
    const p = (typeof about.payload === 'object' && about.payload !== null ? about.payload : {}) as Record<
      string,
      unknown
    >;
    const payload = {
      ...(isEchoable(p.callId) ? { callId: p.callId } : {}),
      ...(isEchoable(p.recipientId) ? { recipientId: p.recipientId } : {}),
      error: body.code.toLowerCase(),
      code: body.code,
      message: body.message,
      ...(body.details ? { details: body.details } : {}),
    };
    const msg = { type: 'call-error', payload, timestamp: Date.now() };
    const data = JSON.stringify(correlation ? { ...msg, [correlation.key]: correlation.value } : msg);
    return { type: 'error' satisfies ServerMessageType, data: Buffer.from(data) };
  },
};

/** An id from the failed message, safe to echo (it may be the reason the message failed). */
function isEchoable(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 128;
}
