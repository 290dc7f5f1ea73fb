/**
 * The lean relay's hand-written validation (bench/baselines/lean-checks.ts) against the protocol's
 * Zod schemas, the single source of truth: for the two types it serves, it must accept exactly the
 * frames the schemas accept, or the bound it gives on the mandated work would be a bound on less
 * work. Every field of a valid candidate and offer is set to every value around its bounds and of
 * every wrong kind, and both must agree on each frame.
 */
import { describe, expect, it } from 'vitest';
import { leanProblem } from '../../bench/baselines/lean-checks.js';
import { frameFor } from '../../bench/lib/payloads.js';
import { CLIENT_SCHEMAS } from '../../src/protocol/index.js';

type Json = Record<string, unknown>;

const s = (n: number) => 'x'.repeat(n);
/** Values of every kind, and strings and numbers on both sides of every bound the schemas name. */
const VALUES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  1_024,
  1_025,
  Number.MAX_SAFE_INTEGER,
  '',
  'x',
  s(64),
  s(65),
  s(128),
  s(129),
  s(256),
  s(257),
  s(2_048),
  s(2_049),
  s(60_000),
  s(60_001),
  [],
  ['x'],
  {},
  { candidate: 'c' },
];

/** Paths of the fields to vary, per frame kind ([] is the whole frame). */
const PATHS: Record<'ice' | 'sdp', string[][]> = {
  ice: [
    [],
    ['type'],
    ['timestamp'],
    ['correlationId'],
    ['payload'],
    ['payload', 'recipientId'],
    ['payload', 'callId'],
    ['payload', 'candidate'],
    ['payload', 'candidate', 'candidate'],
    ['payload', 'candidate', 'sdpMid'],
    ['payload', 'candidate', 'sdpMLineIndex'],
    ['payload', 'candidate', 'usernameFragment'],
  ],
  sdp: [
    [],
    ['type'],
    ['timestamp'],
    ['correlationId'],
    ['payload'],
    ['payload', 'recipientId'],
    ['payload', 'callId'],
    ['payload', 'sdp'],
  ],
};

/** `frame` with the value at `path` set to `value` (deleted when undefined); null when the path is cut. */
function withValue(frame: Json, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(frame);
  let at: Json = copy;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== 'object' || next === null) return null;
    at = next as Json;
  }
  const last = path[path.length - 1];
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

/** Whether the protocol's schema accepts the frame as one of the two types the lean relay serves. */
function zodAccepts(frame: unknown): boolean {
  const type = (frame as Json | null)?.type;
  const served = type === 'call:ice-candidate' || type === 'call:offer';
  const schema = served ? CLIENT_SCHEMAS.get(type) : undefined;
  return schema?.safeParse(frame).success ?? false;
}

describe('lean-relay validation against the protocol’s Zod schemas', () => {
  for (const kind of ['ice', 'sdp'] as const) {
    it(`accepts and refuses exactly what they do, for every field of ${kind === 'ice' ? 'call:ice-candidate' : 'call:offer'}`, () => {
      const valid = JSON.parse(frameFor('mandated', kind, 'bob', 3)) as Json;
      expect(zodAccepts(valid)).toBe(true);
      expect(leanProblem(valid)).toBeNull();
      let accepted = 0;
      let refused = 0;
      const disagreements: string[] = [];
      for (const path of PATHS[kind]) {
        for (const value of [...VALUES, 'call:offer', 'call:ice-candidate', 'call:answer', 'call:nonsense']) {
          const frame = withValue(valid, path, value);
          const zod = zodAccepts(frame);
          const lean = leanProblem(frame) === null;
          if (zod) accepted++;
          else refused++;
          if (zod !== lean)
            disagreements.push(
              `${path.join('.') || '(frame)'} = ${JSON.stringify(value)?.slice(0, 40)}: zod ${zod}, lean ${lean}`,
            );
        }
      }
      expect(disagreements).toEqual([]);
      // Both outcomes were exercised, many times.
      expect(accepted).toBeGreaterThan(20);
      expect(refused).toBeGreaterThan(100);
    });
  }

  it('names a type it does not serve UNKNOWN_TYPE, and a bad field INVALID_MESSAGE with its path', () => {
    expect(leanProblem({ type: 'call:answer', payload: {} })?.code).toBe('UNKNOWN_TYPE');
    expect(leanProblem({ type: 1, payload: {} })?.code).toBe('UNKNOWN_TYPE');
    const noCallId = { type: 'call:offer', payload: { recipientId: 'bob', sdp: 'v=0' } };
    expect(leanProblem(noCallId)).toEqual({
      code: 'INVALID_MESSAGE',
      message: 'payload.callId: expected a string of 1-128 characters',
    });
  });
});
