/**
 * The lean relay's validation (lean-relay.ts): by hand, the checks the protocol's Zod schemas make
 * for the two call messages the relay bench sends, `call:ice-candidate` and `call:offer`
 * (client-messages.ts, common.ts, envelope.ts). `test/bench/lean-relay.test.ts` holds it to the
 * schemas: it accepts and refuses what they do. Bench only; Parley validates with its compiled
 * checkers (signaling/schema-compiler.ts).
 */

export interface LeanProblem {
  code: 'INVALID_MESSAGE' | 'UNKNOWN_TYPE';
  message: string;
}

const LEAN_TYPES = new Set(['call:ice-candidate', 'call:offer']);

/** Null when the parsed frame is a valid `call:ice-candidate` or `call:offer`. */
export function leanProblem(msg: unknown): LeanProblem | null {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg))
    return bad('frame must be a JSON object');
  const m = msg as Record<string, unknown>;
  if (typeof m.type !== 'string' || !LEAN_TYPES.has(m.type))
    return {
      code: 'UNKNOWN_TYPE',
      message: 'this baseline relays call:ice-candidate and call:offer only',
    };
  if (m.timestamp !== undefined && typeof m.timestamp !== 'number')
    return bad('timestamp: expected a number');
  if (m.correlationId !== undefined && !correlationId(m.correlationId))
    return bad('correlationId: expected a string of 1-128 characters');
  const p = m.payload;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return bad('payload: expected an object');
  const o = p as Record<string, unknown>;
  if (!id(o.recipientId)) return bad('payload.recipientId: expected a string of 1-128 characters');
  if (!id(o.callId)) return bad('payload.callId: expected a string of 1-128 characters');
  if (m.type === 'call:ice-candidate') return candidateProblem(o.candidate);
  const sdp = o.sdp;
  return typeof sdp === 'string' && sdp.length >= 1 && sdp.length <= 60_000
    ? null
    : bad('payload.sdp: expected a string of 1-60000 characters');
}

function candidateProblem(c: unknown): LeanProblem | null {
  if (c === null) return null;
  if (typeof c !== 'object' || c === undefined || Array.isArray(c))
    return bad('payload.candidate: expected an object');
  const o = c as Record<string, unknown>;
  if (typeof o.candidate !== 'string' || o.candidate.length > 2_048)
    return bad('payload.candidate.candidate: invalid');
  if (!optionalString(o.sdpMid, 64)) return bad('payload.candidate.sdpMid: invalid');
  const i = o.sdpMLineIndex;
  if (i !== undefined && i !== null && !(Number.isInteger(i) && (i as number) >= 0 && (i as number) <= 1_024))
    return bad('payload.candidate.sdpMLineIndex: invalid');
  if (!optionalString(o.usernameFragment, 256)) return bad('payload.candidate.usernameFragment: invalid');
  return null;
}

const bad = (message: string): LeanProblem => ({ code: 'INVALID_MESSAGE', message });
const id = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 128;
const correlationId = id;
const optionalString = (v: unknown, max: number) =>
  v === undefined || v === null || (typeof v === 'string' && v.length <= max);
