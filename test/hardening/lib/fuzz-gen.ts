import { z } from 'zod';
import { CLIENT_SCHEMAS } from '../../../src/protocol/index.js';
import { Prng } from './prng.js';

/*
 * A seeded generator of hostile WebSocket frames for the signaling server. Frame `i` of seed `s`
 * is always the same bytes given the same context (rooms, users and media ids the connection has
 * seen), so a failure can be replayed from (seed, index).
 *
 * Families:
 *  - invalid JSON, deep nesting, huge strings and arrays (within and beyond MAX_FRAME_BYTES),
 *    wrong envelope types, unknown types, prototype-pollution keys, binary frames;
 *  - every client message type (from CLIENT_SCHEMAS, through its JSON Schema) valid, and with
 *    every field mutated: deleted, null, wrong type, out of bounds, pattern-breaking, huge, deep,
 *    `__proto__`/`constructor`/`prototype` injected beside it;
 *  - any of the above sent as 2–5 WebSocket fragments.
 *
 * The expected answer is not decided here: the harness asks the server's own codec (the oracle)
 * whether a frame is valid, and checks the wire answer against it. The generator only states an
 * `intent` for the cases whose outcome is certain by construction, and the harness checks that
 * the oracle agrees (so a validation hole in the codec shows up too).
 */

/** The subset of JSON Schema that z.toJSONSchema emits for the client payloads. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: JsonSchema | boolean;
  default?: unknown;
}

export type Path = (string | number)[];

/** What the connection knows, so that valid frames reach deep into the handlers. */
export interface FuzzContext {
  /** Rooms this connection is in (and some it is not). */
  rooms: readonly string[];
  /** User ids that are (or were) online. */
  users: readonly string[];
  /** Media object ids the connection has been given (transports, producers, consumers, floor producers). */
  mediaIds: readonly string[];
  /** The frame size limit of the server under test. */
  maxFrameBytes: number;
}

export type Intent = 'INVALID_MESSAGE' | 'UNKNOWN_TYPE' | 'valid';

export interface FuzzFrame {
  index: number;
  /** Family and detail, e.g. `mutate:room:join:payload.roomId:wrong-type`. */
  category: string;
  data: string | Buffer;
  binary: boolean;
  /** Sizes of the fragments the frame is split into; absent = one frame. */
  fragments?: number[];
  /** The correlationId the frame carries, when it carries a valid one. */
  correlationId?: string;
  intent?: Intent;
}

// ---- schemas ---------------------------------------------------------------------------------------

export const MESSAGE_SCHEMAS: ReadonlyMap<string, JsonSchema> = new Map(
  [...CLIENT_SCHEMAS].map(([type, schema]) => {
    const payload = (schema.shape as { payload: z.ZodType }).payload;
    return [type, z.toJSONSchema(payload, { io: 'input', unrepresentable: 'any' }) as JsonSchema];
  }),
);
export const MESSAGE_TYPES: readonly string[] = [...MESSAGE_SCHEMAS.keys()];

function isRequired(parent: JsonSchema, key: string): boolean {
  return parent.required?.includes(key) ?? false;
}

function typesOf(s: JsonSchema): string[] {
  if (s.anyOf) return s.anyOf.flatMap(typesOf);
  if (s.enum) return ['string'];
  if (s.const !== undefined) return [typeof s.const];
  if (s.type === undefined) return ['any'];
  return Array.isArray(s.type) ? s.type : [s.type];
}

/** Every field path of a payload schema, depth first, with its schema and whether it is required. */
export function fieldPaths(
  schema: JsonSchema,
  prefix: Path = [],
): { path: Path; schema: JsonSchema; required: boolean }[] {
  const out: { path: Path; schema: JsonSchema; required: boolean }[] = [];
  const obj = schema.properties ? schema : schema.anyOf?.find((a) => a.properties);
  if (obj?.properties) {
    for (const [key, prop] of Object.entries(obj.properties)) {
      const path = [...prefix, key];
      out.push({ path, schema: prop, required: isRequired(obj, key) });
      out.push(...fieldPaths(prop, path));
    }
  }
  const arr = schema.items ? schema : schema.anyOf?.find((a) => a.items);
  if (arr?.items) {
    const path = [...prefix, 0];
    out.push({ path, schema: arr.items, required: (arr.minItems ?? 0) > 0 });
    out.push(...fieldPaths(arr.items, path));
  }
  return out;
}

// ---- valid values -----------------------------------------------------------------------------------

const SDP =
  'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';
const FINGERPRINT = Array.from({ length: 32 }, () => 'AB').join(':');

/** A value that satisfies `schema`; `full` includes every optional field and prefers objects over null. */
export function validValue(
  schema: JsonSchema,
  key: string,
  ctx: FuzzContext,
  rng: Prng,
  full = false,
): unknown {
  if (schema.anyOf) {
    const nonNull = schema.anyOf.filter((a) => a.type !== 'null');
    const variant = full || rng.chance(0.85) ? rng.pick(nonNull) : rng.pick(schema.anyOf);
    return validValue(variant, key, ctx, rng, full);
  }
  if (schema.enum) return rng.pick(schema.enum);
  if (schema.const !== undefined) return schema.const;
  const t = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (t) {
    case 'null':
      return null;
    case 'boolean':
      return rng.chance(0.5);
    case 'integer':
    case 'number': {
      if (key === 'payloadType') return rng.pick([100, 101, 111, 0, 127]);
      if (key === 'clockRate') return rng.pick([48_000, 8_000, 90_000]);
      const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 0);
      const max = Math.min(schema.maximum ?? 1_000, min + 1_000);
      return rng.int(min, max);
    }
    case 'string':
      return validString(schema, key, ctx, rng);
    case 'array': {
      const min = schema.minItems ?? 0;
      const max = Math.min(schema.maxItems ?? 3, min + 2);
      const n = full ? Math.max(min, 1) : rng.int(min, Math.max(min, max));
      return Array.from({ length: n }, () =>
        schema.items ? validValue(schema.items, key, ctx, rng, full) : 0,
      );
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, prop] of Object.entries(schema.properties ?? {})) {
        if (full || isRequired(schema, k) || rng.chance(0.5)) out[k] = validValue(prop, k, ctx, rng, full);
      }
      if (key === 'rtpParameters' && out.encodings === undefined)
        out.encodings = [{ ssrc: rng.int(1, 2 ** 31) }];
      if (schema.additionalProperties && !full && rng.chance(0.2)) out[`x${rng.int(0, 99)}`] = rng.int(0, 9);
      return out;
    }
    default:
      return rng.pick([1, 'x', null, {}, []]);
  }
}

function validString(schema: JsonSchema, key: string, ctx: FuzzContext, rng: Prng): string {
  switch (key) {
    case 'roomId':
      return ctx.rooms.length > 0 && rng.chance(0.85)
        ? rng.pick(ctx.rooms)
        : `fz-${rng.string(rng.int(1, 8))}`;
    case 'recipientId':
    case 'to':
      return ctx.users.length > 0 && rng.chance(0.8) ? rng.pick(ctx.users) : `ghost-${rng.string(6)}`;
    case 'callId':
      return `call-${rng.int(0, 50)}`;
    case 'transportId':
    case 'producerId':
    case 'consumerId':
      return ctx.mediaIds.length > 0 && rng.chance(0.7)
        ? rng.pick(ctx.mediaIds)
        : `${rng.string(8, '0123456789abcdef')}-0000-4000-8000-${rng.string(12, '0123456789abcdef')}`;
    case 'sdp':
      return SDP + 'a=fuzz:' + rng.string(rng.int(1, 64)) + '\r\n';
    case 'candidate':
      return `candidate:1 1 udp 2130706431 127.0.0.1 ${rng.int(1024, 65535)} typ host`;
    case 'mimeType':
      return rng.pick(['audio/opus', 'audio/PCMU', 'video/VP8', 'audio/x-fuzz']);
    case 'algorithm':
      return rng.pick(['sha-256', 'sha-1', 'sha-512', 'md5']);
    case 'value':
      return FINGERPRINT;
    case 'token':
      return rng.chance(0.5)
        ? `${rng.string(20)}.${rng.string(40)}.${rng.string(43)}`
        : rng.string(rng.int(1, 40));
    case 'resumeToken':
      return rng.string(43, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
    default: {
      const min = schema.minLength ?? 0;
      const max = Math.min(schema.maxLength ?? 24, min + 24);
      return rng.string(rng.int(min, max));
    }
  }
}

// ---- mutations ----------------------------------------------------------------------------------------

/** Builds a JSON object with own prototype-pollution keys (JSON.parse makes them own properties). */
function pollution(): Record<string, unknown> {
  return JSON.parse(
    '{"__proto__":{"admin":true,"polluted":true},"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true}}',
  ) as Record<string, unknown>;
}

/**
 * JSON text spliced in verbatim by `toJson`: deep nesting that JSON.parse reads fine (it is not
 * recursive) but JSON.stringify, which is, cannot write.
 */
export class RawJson {
  constructor(readonly text: string) {}
}

function deepArray(depth: number): RawJson {
  return new RawJson('['.repeat(depth) + ']'.repeat(depth));
}

function deepObject(depth: number): RawJson {
  return new RawJson('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
}

/** JSON.stringify that writes RawJson values verbatim. */
export function toJson(value: unknown): string {
  const raws: string[] = [];
  const text =
    JSON.stringify(value, (_k, v: unknown) => {
      if (v instanceof RawJson) {
        raws.push(v.text);
        return `@@RAW${raws.length - 1}@@`;
      }
      return v;
    }) ?? 'undefined';
  return raws.length === 0 ? text : text.replace(/"@@RAW(\d+)@@"/g, (_m, i: string) => raws[Number(i)]);
}

export interface Mutation {
  name: string;
  /** Returns the replacement value; `DELETE` removes the field. */
  value: (s: JsonSchema, rng: Prng, ctx: FuzzContext) => unknown;
  /** True when the mutated value certainly breaks a field of this schema (INVALID_MESSAGE). */
  breaks?: (s: JsonSchema, required: boolean) => boolean;
  /** The mutation applies to this schema. */
  applies?: (s: JsonSchema) => boolean;
}

export const DELETE = Symbol('delete');

const onlyTypes = (s: JsonSchema, allowed: string[]) =>
  typesOf(s).every((t) => !allowed.includes(t) && t !== 'any');

/** Every mutation, applied to every field of every message type by the systematic sweep. */
export const MUTATIONS: readonly Mutation[] = [
  { name: 'delete', value: () => DELETE, breaks: (_s, required) => required },
  { name: 'null', value: () => null, breaks: (s) => onlyTypes(s, ['null']) },
  { name: 'true', value: () => true, breaks: (s) => onlyTypes(s, ['boolean']) },
  { name: 'zero', value: () => 0, breaks: (s) => onlyTypes(s, ['number', 'integer']) },
  { name: 'negative', value: () => -1 },
  { name: 'fraction', value: () => 1.5 },
  { name: 'huge-number', value: () => 1e308 },
  { name: 'empty-string', value: () => '' },
  { name: 'string', value: () => 'x', breaks: (s) => onlyTypes(s, ['string']) },
  { name: 'nul-and-surrogates', value: () => 'a\u0000b\ud800c\u202e' },
  { name: 'string-proto', value: () => '__proto__' },
  {
    name: 'too-long',
    applies: (s) => typeof s.maxLength === 'number' && s.maxLength < 60_000,
    value: (s) => 'y'.repeat((s.maxLength ?? 0) + 1),
    breaks: () => true,
  },
  {
    name: 'huge-string',
    value: (_s, rng, ctx) => 'z'.repeat(Math.min(60_000, ctx.maxFrameBytes - 2_000) - rng.int(0, 500)),
  },
  {
    name: 'pattern',
    applies: (s) => s.pattern !== undefined,
    value: (_s, rng) => rng.pick(['has space', 'a/b', '../etc', 'x'.repeat(65), 'ü', '']),
    breaks: () => true,
  },
  {
    name: 'above-max',
    applies: (s) => typeof s.maximum === 'number' && s.maximum < Number.MAX_SAFE_INTEGER,
    value: (s) => (s.maximum ?? 0) + 1,
    breaks: () => true,
  },
  {
    name: 'below-min',
    applies: (s) => typeof s.minimum === 'number' || typeof s.exclusiveMinimum === 'number',
    value: (s) => (s.minimum ?? s.exclusiveMinimum ?? 0) - 1,
    breaks: () => true,
  },
  { name: 'enum-miss', applies: (s) => s.enum !== undefined, value: () => 'Audio', breaks: () => true },
  { name: 'empty-array', value: () => [] },
  {
    name: 'too-many-items',
    applies: (s) => typeof s.maxItems === 'number',
    value: (s, rng, ctx) =>
      Array.from({ length: (s.maxItems ?? 0) + 1 }, () => validValue(s.items ?? {}, '', ctx, rng)),
    breaks: () => true,
  },
  {
    name: 'huge-array',
    value: (_s, _rng, ctx) => new Array<number>(Math.floor((ctx.maxFrameBytes - 2_000) / 2)).fill(0),
  },
  { name: 'empty-object', value: () => ({}) },
  { name: 'pollution-object', value: () => pollution() },
  {
    name: 'deep-array',
    value: (_s, rng, ctx) => deepArray(Math.min(rng.int(1_000, 20_000), (ctx.maxFrameBytes - 2_000) >> 1)),
  },
  {
    name: 'deep-object',
    value: (_s, rng, ctx) => deepObject(Math.min(rng.int(100, 5_000), (ctx.maxFrameBytes - 2_000) / 7)),
  },
];

/** Sets (or deletes) the value at `path` inside `root`, creating nothing: the base must be `full`. */
function setAt(root: Record<string, unknown>, path: Path, value: unknown): boolean {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (node === null || typeof node !== 'object') return false;
    node = (node as Record<string | number, unknown>)[path[i]];
  }
  if (node === null || typeof node !== 'object') return false;
  const last = path[path.length - 1];
  if (value === DELETE) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete (node as Record<string, unknown>)[last];
  } else {
    // defineProperty, not assignment: a key named "__proto__" must become an own property.
    Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
  }
  return true;
}

/** Adds the prototype-pollution keys beside the field at `path` (to its parent object). */
function injectBeside(root: Record<string, unknown>, path: Path): boolean {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (node === null || typeof node !== 'object') return false;
    node = (node as Record<string | number, unknown>)[path[i]];
  }
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return false;
  for (const [k, v] of Object.entries(pollution())) {
    Object.defineProperty(node, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return true;
}

// ---- the systematic sweep -------------------------------------------------------------------------------

export interface SweepCase {
  type: string;
  /** Path inside the envelope: ['payload', ...] or an envelope field. */
  path: Path;
  mutation: string;
}

const ENVELOPE_FIELDS: { path: Path; schema: JsonSchema; required: boolean }[] = [
  { path: ['type'], schema: { type: 'string', minLength: 1, maxLength: 64 }, required: true },
  { path: ['timestamp'], schema: { type: 'number' }, required: false },
  { path: ['correlationId'], schema: { type: 'string', minLength: 1, maxLength: 128 }, required: false },
];

function envelopeSchema(type: string): JsonSchema {
  const payload = MESSAGE_SCHEMAS.get(type);
  if (!payload) throw new Error(`no schema for ${type}`);
  return {
    type: 'object',
    properties: {
      payload,
      type: ENVELOPE_FIELDS[0].schema,
      timestamp: ENVELOPE_FIELDS[1].schema,
      correlationId: ENVELOPE_FIELDS[2].schema,
    },
    // ping's payload may be omitted (it has a default).
    required: payload.default !== undefined ? ['type'] : ['type', 'payload'],
  };
}

/** Every (message type × field × mutation) combination, plus a beside-injection per field. */
export function sweepCases(): SweepCase[] {
  const out: SweepCase[] = [];
  for (const type of MESSAGE_TYPES) {
    const env = envelopeSchema(type);
    for (const f of fieldPaths(env)) {
      for (const m of MUTATIONS)
        if (!m.applies || m.applies(f.schema)) out.push({ type, path: f.path, mutation: m.name });
      out.push({ type, path: f.path, mutation: 'inject-beside' });
    }
    out.push({ type, path: [], mutation: 'valid' });
  }
  return out;
}

// ---- the generator -------------------------------------------------------------------------------------

const UNKNOWN_TYPES = [
  'room:explode',
  'PING',
  'Room:Join',
  ' ping',
  'ping ',
  'room:join\u0000',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'auth:response',
  'welcome',
  'error',
  'pong',
  'room:state',
  'ptt:granted',
  'transport:created',
  'admin:kick',
  'session:steal',
];

export class FuzzGenerator {
  readonly #seed: number;
  readonly #sweep = sweepCases();

  constructor(seed: number) {
    this.#seed = seed;
  }

  get sweepSize(): number {
    return this.#sweep.length;
  }

  /**
   * Frame `index`: the first `sweepSize` indices walk the systematic sweep in order, the rest are
   * random draws from every family.
   */
  frame(index: number, ctx: FuzzContext): FuzzFrame {
    const rng = new Prng(this.#seed).fork(index);
    const cid = `f${index}`;
    let frame: FuzzFrame;
    if (index < this.#sweep.length) frame = this.#sweepFrame(index, this.#sweep[index], ctx, rng, cid);
    else frame = this.#randomFrame(index, ctx, rng, cid);
    // Any text frame may also go out in fragments.
    if (!frame.binary && index >= this.#sweep.length && rng.chance(0.08)) {
      const bytes = Buffer.byteLength(frame.data);
      if (bytes >= 4) {
        const n = rng.int(2, Math.min(5, bytes));
        const cuts = new Set<number>();
        while (cuts.size < n - 1) cuts.add(rng.int(1, bytes - 1));
        const sorted = [...cuts].sort((a, b) => a - b);
        const sizes = sorted.map((c, i) => c - (i === 0 ? 0 : sorted[i - 1]));
        sizes.push(bytes - sorted[sorted.length - 1]);
        frame = { ...frame, category: `fragmented/${frame.category}`, fragments: sizes };
      }
    }
    return frame;
  }

  #sweepFrame(index: number, c: SweepCase, ctx: FuzzContext, rng: Prng, cid: string): FuzzFrame {
    const env = envelopeSchema(c.type);
    const msg: Record<string, unknown> = {
      type: c.type,
      payload: validValue(MESSAGE_SCHEMAS.get(c.type)!, 'payload', ctx, rng, true),
      timestamp: Date.now(),
      correlationId: cid,
    };
    const category = `sweep:${c.type}:${c.path.join('.') || '(message)'}:${c.mutation}`;
    let intent: Intent | undefined;
    if (c.mutation === 'valid') {
      intent = 'valid';
    } else if (c.mutation === 'inject-beside') {
      injectBeside(msg, c.path);
    } else {
      const m = MUTATIONS.find((x) => x.name === c.mutation)!;
      const field = fieldPaths(env).find((f) => f.path.join('.') === c.path.join('.'))!;
      setAt(msg, c.path, m.value(field.schema, rng, ctx));
      if (m.breaks?.(field.schema, field.required)) intent = 'INVALID_MESSAGE';
      // Breaking `type` means no schema can be found: the code depends on how it broke.
      if (c.path[0] === 'type') intent = undefined;
    }
    const data = toJson(msg);
    const carriesCid = c.path[0] !== 'correlationId';
    return {
      index,
      category,
      data,
      binary: false,
      ...(carriesCid ? { correlationId: cid } : {}),
      ...(intent ? { intent } : {}),
    };
  }

  #randomFrame(index: number, ctx: FuzzContext, rng: Prng, cid: string): FuzzFrame {
    const text = (category: string, data: string, extra: Partial<FuzzFrame> = {}): FuzzFrame => ({
      index,
      category,
      data,
      binary: false,
      ...extra,
    });
    const valid = (type: string) => ({
      type,
      payload: validValue(MESSAGE_SCHEMAS.get(type)!, 'payload', ctx, rng),
      timestamp: Date.now(),
      correlationId: cid,
    });
    const roll = rng.next();
    // Valid messages of every type: a third of the random draws, so the handlers get exercised.
    if (roll < 0.3) {
      const type = rng.pick(MESSAGE_TYPES);
      return text(`valid:${type}`, JSON.stringify(valid(type)), { correlationId: cid, intent: 'valid' });
    }
    // A random field of a random type with a random mutation (plus havoc on the text).
    if (roll < 0.6) {
      const type = rng.pick(MESSAGE_TYPES);
      const msg = valid(type) as Record<string, unknown>;
      const fields = fieldPaths(envelopeSchema(type)).filter((f) => f.path[0] !== 'correlationId');
      const f = rng.pick(fields);
      const m = rng.pick(MUTATIONS.filter((x) => !x.applies || x.applies(f.schema)));
      if (f.path.length > 1 && f.path[0] === 'payload' && msg.payload && typeof msg.payload === 'object') {
        // Only mutate fields the (non-full) valid value actually has, or add them.
        setAt(msg, f.path.slice(0, -1), getAt(msg, f.path.slice(0, -1)) ?? {});
      }
      setAt(msg, f.path, m.value(f.schema, rng, ctx));
      let data = toJson(msg);
      let category = `mutate:${type}:${f.path.join('.')}:${m.name}`;
      if (rng.chance(0.15)) {
        data = havoc(data, rng);
        category += '+havoc';
      }
      return text(category, data, { correlationId: cid });
    }
    if (roll < 0.68) return text('invalid-json', invalidJson(rng, cid));
    if (roll < 0.72) {
      const depth = rng.int(100, Math.floor((ctx.maxFrameBytes - 100) / 2));
      return rng.chance(0.5)
        ? text('deep:array-frame', '['.repeat(depth) + ']'.repeat(depth))
        : text(
            'deep:in-payload',
            `{"type":"ping","correlationId":"${cid}","payload":{"n":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
            { correlationId: cid },
          );
    }
    if (roll < 0.76) {
      // Huge strings and arrays, inside the frame limit or just past it.
      const beyond = rng.chance(0.35);
      const target = beyond
        ? ctx.maxFrameBytes + rng.int(1, ctx.maxFrameBytes)
        : rng.int(1_000, ctx.maxFrameBytes - 200);
      const type = rng.pick(MESSAGE_TYPES);
      const huge = rng.chance(0.5)
        ? `{"type":"${type}","correlationId":"${cid}","payload":{"x":"${'h'.repeat(target)}"}}`
        : `{"type":"${type}","correlationId":"${cid}","payload":{"x":[${new Array(Math.floor(target / 2)).fill(1).join(',')}]}}`;
      return text(beyond ? 'huge:beyond-limit' : 'huge:within-limit', huge, { correlationId: cid });
    }
    if (roll < 0.82) {
      // Wrong envelope types.
      const variants: [string, unknown][] = [
        ['type-number', { type: 7, correlationId: cid }],
        ['type-array', { type: ['ping'], correlationId: cid }],
        ['type-object', { type: { toString: 'ping' }, correlationId: cid }],
        ['type-null', { type: null, correlationId: cid }],
        ['type-empty', { type: '', correlationId: cid }],
        ['type-long', { type: 'a'.repeat(rng.int(65, 5_000)), correlationId: cid }],
        ['payload-string', { type: rng.pick(MESSAGE_TYPES), payload: 'lobby', correlationId: cid }],
        ['payload-array', { type: rng.pick(MESSAGE_TYPES), payload: [1, 2], correlationId: cid }],
        ['payload-number', { type: rng.pick(MESSAGE_TYPES), payload: 1, correlationId: cid }],
        ['timestamp-string', { type: 'ping', timestamp: 'now', correlationId: cid }],
        ['cid-object', { type: 'ping', correlationId: { id: 1 } }],
        ['cid-long', { type: 'ping', correlationId: 'c'.repeat(129) }],
        ['cid-empty', { type: rng.pick(MESSAGE_TYPES), correlationId: '' }],
      ];
      const [name, v] = rng.pick(variants);
      const keepsCid = !name.startsWith('cid-');
      return text(`wrong-type:${name}`, JSON.stringify(v), keepsCid ? { correlationId: cid } : {});
    }
    if (roll < 0.87) {
      const type = rng.chance(0.7)
        ? rng.pick(UNKNOWN_TYPES)
        : `${rng.string(rng.int(1, 10))}:${rng.string(rng.int(1, 10))}`;
      return text(`unknown-type`, JSON.stringify({ type, payload: {}, correlationId: cid }), {
        correlationId: cid,
        ...(CLIENT_SCHEMAS.has(type) ? {} : { intent: 'UNKNOWN_TYPE' as const }),
      });
    }
    if (roll < 0.93) {
      // Prototype-pollution keys at the top level and in the payload of a valid message.
      const type = rng.pick(MESSAGE_TYPES);
      const base = JSON.stringify(valid(type));
      const inject =
        '"__proto__":{"admin":true,"type":"ping"},"constructor":{"prototype":{"admin":true}},"prototype":{"x":1},';
      const data = rng.chance(0.5)
        ? `{${inject}${base.slice(1)}`
        : base.replace('"payload":{', `"payload":{${inject}`);
      return text(`proto:${type}`, data, { correlationId: cid });
    }
    // Binary frames: valid JSON as binary, or random bytes.
    const bytes = rng.chance(0.5)
      ? Buffer.from(JSON.stringify(valid(rng.pick(MESSAGE_TYPES))))
      : rng.bytes(rng.int(0, 512));
    return { index, category: 'binary', data: bytes, binary: true };
  }
}

function getAt(root: unknown, path: Path): unknown {
  let node = root;
  for (const k of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[k];
  }
  return node;
}

function invalidJson(rng: Prng, cid: string): string {
  const samples = [
    '',
    ' ',
    '{',
    '}',
    '{"type":',
    '{"type":"ping",',
    `{"type":"ping","correlationId":"${cid}"`,
    "{'type':'ping'}",
    '{type:"ping"}',
    '{"type":"ping",}',
    '{"type":"ping"}}',
    '{"type":NaN}',
    '{"type":"ping","timestamp":Infinity}',
    '{"type":"ping"} // comment',
    '\ufeff{"type":"ping"}',
    'undefined',
    'null',
    'true',
    '42',
    '"ping"',
    '[]',
    '[{"type":"ping"}]',
    '{"type":"ping","payload":{"a":"\\x41"}}',
    '{"type":"ping","payload":{"a":"\\u12"}}',
    '{"a":' + '1'.repeat(400) + 'e99999}',
  ];
  if (rng.chance(0.7)) return rng.pick(samples);
  // Random printable garbage, sometimes with a valid-looking prefix.
  const garbage = rng.string(rng.int(1, 300), ' {}[]":,abcdefxyz0123456789\\/.-_\u00e9\u4e2d');
  return rng.chance(0.5) ? `{"type":"ping",${garbage}` : garbage;
}

/** Byte-level havoc on a JSON text: flips, truncations, duplications. */
function havoc(s: string, rng: Prng): string {
  const n = rng.int(1, 4);
  let out = s;
  for (let i = 0; i < n && out.length > 0; i++) {
    const at = rng.int(0, out.length - 1);
    switch (rng.int(0, 3)) {
      case 0:
        out = out.slice(0, at) + String.fromCharCode(rng.int(32, 126)) + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at, at + rng.int(1, 20)).repeat(2) + out.slice(at);
        break;
      default:
        out = out.slice(0, at) + rng.pick(['"', '{', '}', '[', ']', ',', ':', '\\']) + out.slice(at);
    }
  }
  return out;
}
