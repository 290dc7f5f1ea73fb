import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CLIENT_SCHEMAS, RELAYS } from '../../src/protocol/index.js';
import { COMPILED_VALIDATORS, decode, pathDeeperThan } from '../../src/server/signaling/codec.js';
import { countKeys, sameTree } from '../../src/server/wire/relay-splice.js';
import { defaults } from '../../src/server/config/defaults.js';
import {
  compileSchema,
  compileSchemas,
  lastExact,
  REJECT,
  Uncompilable,
  type Checker,
} from '../../src/server/signaling/schema-compiler.js';
import {
  FuzzGenerator,
  MESSAGE_SCHEMAS,
  fieldPaths,
  validValue,
  type FuzzContext,
  type Path,
} from '../hardening/lib/fuzz-gen.js';
import { Prng } from '../hardening/lib/prng.js';

/**
 * The compiled validators (schema-compiler.ts) must be Zod, only faster: over the fuzz corpus and
 * over generated edge cases (every field missing, of every wrong type, at and past every bound,
 * unicode, deep nesting, extra keys, NaN / -0 / Infinity), a compiled checker accepts exactly what
 * the Zod schema accepts, with the same parsed value (same keys in the same order, same values to
 * Object.is), and the codec's answer with the compiled checkers is the codec's answer with Zod alone:
 * same message, or same error code, message and details.
 */

const NO_COMPILED: ReadonlyMap<string, Checker> = new Map();

/** Deep equality that also checks key order, prototypes and Object.is on primitives (-0 ≠ 0). */
function identical(a: unknown, b: unknown, at = '$'): string | null {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null)
    return Object.is(a, b) ? null : `${at}: ${String(a)} vs ${String(b)}`;
  if (Array.isArray(a) !== Array.isArray(b)) return `${at}: array vs object`;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${at}: prototypes differ`;
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i]))
    return `${at}: keys [${ka.map(String).join(',')}] vs [${kb.map(String).join(',')}]`;
  for (const k of ka) {
    const d = identical(
      (a as Record<PropertyKey, unknown>)[k],
      (b as Record<PropertyKey, unknown>)[k],
      `${at}.${String(k)}`,
    );
    if (d) return d;
  }
  return null;
}

/** The checker against Zod on one JS value; returns the verdict. */
function compare(type: string, checker: Checker, input: unknown): boolean {
  const schema = CLIENT_SCHEMAS.get(type);
  if (!schema) throw new Error(type);
  const zod = schema.safeParse(input);
  const fast = checker(input);
  const { exact, keys } = lastExact;
  const label = `${type}: ${safeText(input)}`;
  expect(fast !== REJECT, label).toBe(zod.success);
  if (zod.success) expect(identical(fast, zod.data), label).toBeNull();
  // Exactness (what decode trusts instead of sameTree, countKeys and the depth walk) is never
  // claimed wrongly, whatever the input; that it is claimed whenever it holds for JSON input, the
  // codec comparison below shows (its `verbatim` is the same with the checkers and with Zod alone).
  if (zod.success && checker.exactDepth !== undefined && exact) {
    const payload = (input as { payload?: unknown }).payload;
    expect(sameTree(payload, (zod.data as { payload?: unknown }).payload), label).toBe(true);
    expect(keys, label).toBe(countKeys(payload));
    expect(pathDeeperThan(payload, checker.exactDepth), label).toBeNull();
  }
  return zod.success;
}

/** The codec with the compiled checkers against the codec with Zod alone, on one frame's text. */
function compareDecode(text: string): boolean {
  const withCompiled = decode(text);
  const zodOnly = decode(text, null, NO_COMPILED);
  expect(identical(withCompiled, zodOnly), text.slice(0, 300)).toBeNull();
  return withCompiled.ok;
}

function safeText(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? String(v)).slice(0, 300);
  } catch {
    return String(v);
  }
}

const CTX: FuzzContext = {
  rooms: ['lobby', 'radio'],
  users: ['alice', 'bob', 'carol'],
  mediaIds: ['m1', 'm2'],
  maxFrameBytes: 64 * 1024,
};

/** Values JSON can carry, and some only JS can (NaN, Infinity, undefined), for every field. */
function interesting(): unknown[] {
  const strings = [
    0, 1, 2, 63, 64, 65, 127, 128, 129, 255, 256, 257, 2_047, 2_048, 2_049, 59_999, 60_000, 60_001,
  ].map((n) => 'a'.repeat(n));
  return [
    ...strings,
    null,
    undefined,
    true,
    false,
    0,
    -0,
    1,
    -1,
    1.5,
    1_023,
    1_024,
    1_025,
    15,
    16,
    2 ** 53 - 1,
    2 ** 53,
    -(2 ** 53),
    1e308,
    Infinity,
    -Infinity,
    NaN,
    'é',
    // Zod counts code points: 2 UTF-16 units each here.
    ...[1, 32, 33, 64, 65, 128, 129, 1_024, 1_025].map((n) => '😀'.repeat(n)),
    'a' + '😀'.repeat(64),
    '\ud800',
    '\ud800'.repeat(129),
    '\udc00\ud800'.repeat(65),
    'a\u0000b',
    'has space',
    'lobby',
    '__proto__',
    [],
    ['x'],
    {},
    { candidate: 'c' },
    { a: { a: { a: { a: { a: 1 } } } } },
    JSON.parse('{"__proto__":{"polluted":1}}'),
    Object.create(null),
  ];
}

function getAt(root: Record<string, unknown>, path: Path): unknown {
  let node: unknown = root;
  for (const k of path) node = (node as Record<string | number, unknown> | null)?.[k];
  return node;
}

/** A deep copy of `root` with the value at `path` replaced (`undefined` as the value of `remove`: deleted). */
function withValue(root: unknown, path: Path, value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  const copy = (Array.isArray(root) ? [...(root as unknown[])] : { ...(root as object) }) as Record<
    string | number,
    unknown
  >;
  const [head, ...rest] = path;
  if (rest.length === 0) {
    if (remove) delete copy[head];
    else copy[head] = value;
  } else copy[head] = withValue(copy[head], rest, value, remove);
  return copy;
}

/** A valid message of `type` with every optional field, and one with only what is required. */
function validMessages(type: string, rng: Prng): Record<string, unknown>[] {
  const schema = MESSAGE_SCHEMAS.get(type);
  if (!schema) throw new Error(type);
  return [true, false].map((full) => ({
    type,
    payload: validValue(schema, 'payload', CTX, rng, full),
    timestamp: 1_700_000_000_000,
    correlationId: 'c1',
  }));
}

describe('compiled validators', () => {
  it('compile every relayed message type (and say why each other type stays on Zod)', () => {
    for (const type of Object.keys(RELAYS)) expect(COMPILED_VALIDATORS.has(type), type).toBe(true);
    // And each reports its payload's exactness, nesting shallowly enough to skip the depth walk.
    for (const type of Object.keys(RELAYS)) {
      const depth = COMPILED_VALIDATORS.get(type)?.exactDepth;
      expect(depth, type).toBeDefined();
      expect(depth, type).toBeLessThanOrEqual(defaults.maxPayloadDepth);
    }
    const { checkers, refused } = compileSchemas(CLIENT_SCHEMAS);
    expect(checkers.size + refused.size).toBe(CLIENT_SCHEMAS.size);
    for (const [type, err] of refused) {
      expect(err, type).toBeInstanceOf(Uncompilable);
      expect(COMPILED_VALIDATORS.has(type)).toBe(false);
    }
  });

  it('accept and reject exactly what Zod does, with the same output, on generated edge cases', () => {
    const rng = new Prng(14);
    let accepted = 0;
    let rejected = 0;
    for (const [type, checker] of COMPILED_VALIDATORS) {
      const payloadSchema = MESSAGE_SCHEMAS.get(type);
      if (!payloadSchema) throw new Error(type);
      const paths: Path[] = [
        [],
        ['type'],
        ['payload'],
        ['timestamp'],
        ['correlationId'],
        ...fieldPaths(payloadSchema).map((f) => ['payload', ...f.path]),
      ];
      for (const base of validMessages(type, rng)) {
        expect(compare(type, checker, base)).toBe(true);
        for (const path of paths) {
          for (const v of interesting())
            if (compare(type, checker, withValue(base, path, v))) accepted++;
            else rejected++;
          if (path.length > 0) compare(type, checker, withValue(base, path, undefined, true)); // missing
          // Extra keys beside the field (and inside it, when it is an object): stripped, never copied.
          const parent = getAt(base, path.slice(0, -1));
          if (typeof parent === 'object' && parent !== null && !Array.isArray(parent)) {
            for (const extra of ['senderId', 'extra', 'constructor', 'toString'])
              compare(type, checker, withValue(base, [...path.slice(0, -1), extra], 'forged'));
          }
          const own = getAt(base, path);
          if (typeof own === 'object' && own !== null && !Array.isArray(own))
            compare(type, checker, withValue(base, [...path, 'extra'], { deep: [1, { x: 2 }] }));
        }
        // Member order does not change the output (Zod's output follows the schema's order).
        const reversed = Object.fromEntries(Object.entries(base).reverse());
        expect(compare(type, checker, reversed)).toBe(true);
        // Through JSON text and the codec: the same Decoded either way.
        for (const path of paths)
          for (const v of interesting()) compareDecode(JSON.stringify(withValue(base, path, v)) ?? 'null');
      }
      // Not objects at all.
      for (const v of interesting()) compare(type, checker, v);
    }
    // The corpus reaches both verdicts plenty.
    expect(accepted).toBeGreaterThan(1_000);
    expect(rejected).toBeGreaterThan(1_000);
  }, 120_000);

  it('give the codec the same answer as Zod alone over the fuzz corpus', () => {
    let ok = 0;
    let invalid = 0;
    let relays = 0;
    for (const seed of [1, 2]) {
      const gen = new FuzzGenerator(seed);
      const count = gen.sweepSize + 1_500;
      for (let i = 0; i < count; i++) {
        const f = gen.frame(i, CTX);
        if (f.binary || typeof f.data !== 'string') continue;
        if (compareDecode(f.data)) ok++;
        else invalid++;
        // And each checker straight against its schema on the parsed frame.
        let raw: unknown;
        try {
          raw = JSON.parse(f.data);
        } catch {
          continue;
        }
        const type = (raw as { type?: unknown } | null)?.type;
        const checker = typeof type === 'string' ? COMPILED_VALIDATORS.get(type) : undefined;
        if (checker && typeof type === 'string') {
          compare(type, checker, raw);
          if (Object.hasOwn(RELAYS, type)) relays++;
        }
      }
    }
    expect(ok).toBeGreaterThan(100);
    expect(invalid).toBeGreaterThan(100);
    expect(relays).toBeGreaterThan(100);
  }, 180_000);

  it('refuse what they cannot reproduce exactly, and those types stay on Zod', () => {
    const refusedFeatures: [string, z.ZodType][] = [
      ['a transform', z.object({ a: z.string().transform((s) => s.length) })],
      ['a default', z.object({ a: z.string().default('x') })],
      ['a refinement', z.object({ a: z.string().refine((s) => s !== 'x') })],
      ['trim', z.object({ a: z.string().trim() })],
      ['an enum', z.object({ a: z.enum(['send', 'recv']) })],
      ['a union', z.object({ a: z.union([z.string(), z.number()]) })],
      ['a strict object', z.object({ a: z.string() }).strict()],
      ['a passthrough object', z.object({ a: z.string() }).passthrough()],
      ['a string format', z.object({ a: z.email() })],
      ['a global regex', z.object({ a: z.string().regex(/a/g) })],
      ['coercion', z.object({ a: z.coerce.number() })],
      ['an array', z.object({ a: z.array(z.string()) })],
      ['a record', z.object({ a: z.record(z.string(), z.unknown()) })],
      ['unknown', z.object({ a: z.unknown() })],
      ['a key on Object.prototype', z.object({ constructor: z.string() })],
      ['a multipleOf check', z.object({ a: z.number().multipleOf(2) })],
      ['an int32 format', z.object({ a: z.int32() })],
    ];
    for (const [what, schema] of refusedFeatures)
      expect(() => compileSchema(schema), what).toThrow(Uncompilable);
    // The error names where.
    expect(() => compileSchema(z.object({ p: z.object({ dir: z.enum(['a']) }) }))).toThrow(/p\.dir/);

    // compileSchemas keeps the rest compiled and lists the refused one.
    const mixed = new Map<string, z.ZodType>([
      ['ok', z.object({ a: z.string().max(3) })],
      ['no', z.object({ a: z.string().trim() })],
    ]);
    const { checkers, refused } = compileSchemas(mixed);
    expect([...checkers.keys()]).toEqual(['ok']);
    expect([...refused.keys()]).toEqual(['no']);

    // A refused client type (room:join: its displayName is trimmed) is decoded by Zod: trimmed.
    expect(COMPILED_VALIDATORS.has('room:join')).toBe(false);
    const d = decode('{"type":"room:join","payload":{"roomId":"lobby","displayName":"  Ann  "}}');
    expect(d.ok && d.msg.type === 'room:join' && d.msg.payload.displayName).toBe('Ann');
  });

  it('report whether the payload is exactly its output, counting its keys', () => {
    const schema = z.object({
      type: z.literal('t'),
      payload: z.object({ a: z.string(), b: z.object({ c: z.number() }).optional() }),
    });
    const check = compileSchema(schema, { exactKey: 'payload' });
    expect(check.exactDepth).toBe(1);
    expect(compileSchema(schema).exactDepth).toBeUndefined();
    const cases: [unknown, boolean, number?][] = [
      [{ type: 't', payload: { a: 'x' } }, true, 1],
      [{ type: 't', payload: { b: { c: 1 }, a: 'x' } }, true, 3],
      // Beside the payload, the envelope may hold what it likes: only the payload is spliced.
      [{ type: 't', payload: { a: 'x' }, extra: { deep: [1] } }, true, 1],
      [{ type: 't', payload: { a: 'x', z: 1 } }, false], // stripped
      [{ type: 't', payload: { a: 'x', b: { c: 1, d: 2 } } }, false], // stripped, one level down
      [{ type: 't', payload: JSON.parse('{"a":"x","__proto__":{}}') as unknown }, false], // an own __proto__
      [{ type: 't', payload: Object.assign(Object.create(null) as object, { a: 'x' }) }, false], // not a JSON object
      [{ type: 't', payload: Object.assign(Object.create({ z: 1 }) as object, { a: 'x' }) }, false], // inherits a key
    ];
    for (const [input, exact, keys] of cases) {
      expect(check(input), safeText(input)).not.toBe(REJECT);
      expect(lastExact.exact, safeText(input)).toBe(exact);
      if (keys !== undefined) expect(lastExact.keys, safeText(input)).toBe(keys);
      const payload = (input as { payload: unknown }).payload;
      const zodPayload = (schema.parse(input) as { payload: unknown }).payload;
      if (exact) expect(sameTree(payload, zodPayload)).toBe(true);
    }
    // The codec takes the checker's word for the relays it decodes (the SDK's frames are exact).
    for (const frame of [
      '{"type":"call:ice-candidate","payload":{"recipientId":"b","callId":"c","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}}',
      '{"type":"call:offer","payload":{"recipientId":"b","callId":"c","sdp":"v=0"},"timestamp":1}',
    ]) {
      const d = decode(frame);
      expect(d.ok && d.verbatim !== undefined, frame).toBe(true);
      expect(lastExact.exact, frame).toBe(true);
    }
    // A member with no object in it nests nothing.
    expect(compileSchema(z.object({ payload: z.string() }), { exactKey: 'payload' }).exactDepth).toBe(0);
  });

  it('reproduce the compiled features on their own, bound by bound', () => {
    const cases: [z.ZodType, unknown[]][] = [
      [z.number().gt(0).lt(10), [-0, 0, 1e-9, 5, 10, 9.999, NaN, Infinity, '5']],
      [z.number().min(-1).max(1), [-1, -1.0001, 1, 1.0001, -0, 0]],
      [z.number().int().min(-0), [-0, 0, -1, 0.5, 2 ** 53, 2 ** 53 - 1]],
      [z.literal(['a', 1, true, null]), ['a', 1, true, null, 'b', 0, false, undefined, '1']],
      [z.literal(0), [0, -0, '0', false]],
      [z.string().regex(/^x+$/i), ['x', 'XX', '', 'xy', 5]],
      [z.string().min(2).max(2), ['😀', 'ab', 'a', 'abc', '\ud800\ud800']],
      [z.string().nullable().optional(), [undefined, null, 's', 1]],
      [z.string().optional().nullable(), [undefined, null, 's', 1]],
      [
        z.object({ a: z.string().optional(), b: z.object({ c: z.number() }).nullable() }),
        [
          { b: null },
          { a: undefined, b: null },
          { a: 'x', b: { c: 1, d: 2 } },
          { b: { c: '1' } },
          { a: 'x' },
          [],
          null,
          Object.create({ b: null }), // inherited members are read, as zod does
        ],
      ],
    ];
    for (const [schema, inputs] of cases) {
      const checker = compileSchema(schema);
      for (const input of inputs) {
        const zod = schema.safeParse(input);
        const fast = checker(input);
        expect(fast !== REJECT, `${safeText(input)}`).toBe(zod.success);
        if (zod.success) expect(identical(fast, zod.data)).toBeNull();
      }
    }
  });
});
