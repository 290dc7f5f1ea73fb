import {
  CLIENT_SCHEMAS,
  CorrelationId,
  RELAYS,
  type ClientMessage,
  type ErrorCode,
} from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import { formatPath } from '../config/manifest.js';
import type { Correlation } from '../wire/frame.js';
import { countKeys, sameTree, type RelaySource } from '../wire/relay-splice.js';
import type { Dialect } from './dialect.js';
import { compileSchemas, lastExact, REJECT, type Checker } from './schema-compiler.js';

export type Decoded =
  | {
      ok: true;
      msg: ClientMessage;
      /** How the request named itself (`correlationId`, or its alias `id`): its reply does the same. */
      correlation?: Correlation;
      /**
       * A relay whose received payload is exactly what the schema accepted: its text can be
       * forwarded as received (wire/relay-splice.ts). Absent: re-encode the validated payload.
       */
      verbatim?: RelaySource;
    }
  | {
      ok: false;
      code: ErrorCode;
      message: string;
      details?: Record<string, unknown>;
      correlation?: Correlation;
      /** The frame's (Parley) type when it had a usable one (for metrics, logs and dialects). */
      type?: string;
      /** The frame's payload as received, when it had a usable type (a dialect may echo ids from it). */
      payload?: unknown;
    };

const MAX_REPORTED_TYPE = 64;

/**
 * Every client message schema that compiles (schema-compiler.ts), built once from the Zod schemas
 * at start-up: what they accept is what Zod accepts, with the same parsed value; what they refuse
 * goes to Zod for its error. A schema the compiler refuses stays on Zod alone.
 */
export const COMPILED_VALIDATORS: ReadonlyMap<string, Checker> = compileSchemas(CLIENT_SCHEMAS, undefined, {
  exactKey: 'payload',
}).checkers;

/**
 * Parses and validates one inbound text frame. Never throws. The error keeps the frame's
 * correlation when it had a valid one, so the client can match the error to its request.
 *
 * `id` is accepted as an alias of `correlationId` (SPEC §9) when `correlationId` is absent: a
 * string of 1-128 characters or an integer, echoed back under `id` with its JSON type. With both,
 * `correlationId` wins. A `dialect` renames the inbound type first (docs/migration.md).
 */
export function decode(
  text: string,
  dialect: Dialect | null = null,
  /** The compiled checkers to try before Zod; an empty map validates with Zod alone (tests). */
  compiled: ReadonlyMap<string, Checker> = COMPILED_VALIDATORS,
): Decoded {
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
  // Most frames (relays) carry no correlation: do not run a schema just to fail it. A failed
  // zod parse builds an error with issues, and that was ~20% of a relayed message's JS cost
  // (bench/ scenario 1 profile). The envelope schema below still validates a present one.
  let correlation: Correlation | undefined;
  if (obj.correlationId !== undefined) {
    const cid = CorrelationId.safeParse(obj.correlationId);
    if (cid.success) correlation = { key: 'correlationId', value: cid.data };
  } else if (obj.id !== undefined) {
    const id = obj.id;
    if (!isValidId(id)) {
      return {
        ok: false,
        code: 'INVALID_MESSAGE',
        message: 'id: expected a string of 1-128 characters or an integer',
        details: { path: 'id', ...(typeof obj.type === 'string' ? { type: obj.type.slice(0, 64) } : {}) },
      };
    }
    correlation = { key: 'id', value: id };
    obj.correlationId = String(id); // the schemas and logs know only correlationId
  }
  const withCid = correlation === undefined ? {} : { correlation };

  if (typeof obj.type !== 'string') {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'type: expected a string', ...withCid };
  }
  const type = dialect === null ? obj.type : (obj.type = dialect.inbound(obj.type));
  const schema = CLIENT_SCHEMAS.get(type);
  if (!schema) {
    const reported = type.slice(0, MAX_REPORTED_TYPE);
    return {
      ok: false,
      code: 'UNKNOWN_TYPE',
      message: `unknown message type "${reported}"`,
      details: { type: reported },
      ...withCid,
    };
  }
  // A compiled checker reads only the members its schema names (no recursion the schema does not
  // bound), so it runs first: a payload it accepts as exactly its output nests no deeper than its
  // schema, and the depth walk below is skipped (every relayed type's schema nests 1–2 levels).
  const checker = compiled.get(type);
  const fast = checker === undefined ? REJECT : checker(obj);
  const exact =
    fast !== REJECT &&
    checker?.exactDepth !== undefined &&
    checker.exactDepth <= defaults.maxPayloadDepth &&
    lastExact.exact;
  // Before any schema, and long before mediasoup: a payload nested deeper than any message needs
  // (a 60 KiB frame of `[[[[…` or `{"a":{"a":…` inside rtpCapabilities once reached mediasoup and
  // came back INTERNAL with a stack trace) is refused, naming where it got too deep.
  const tooDeep =
    !exact && deeperThan(obj.payload, 0, defaults.maxPayloadDepth)
      ? pathDeeperThan(obj.payload, defaults.maxPayloadDepth)
      : null;
  if (tooDeep !== null) {
    const path = formatPath(['payload', ...tooDeep]);
    return {
      ok: false,
      code: 'INVALID_MESSAGE',
      message: `${path}: nested deeper than ${defaults.maxPayloadDepth} levels`,
      details: { path, type, maxDepth: defaults.maxPayloadDepth },
      ...withCid,
      type,
    };
  }
  const parsed =
    fast === REJECT ? schema.safeParse(obj) : { success: true as const, data: fast as ClientMessage };
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue ? formatPath(issue.path) : '(root)';
    return {
      ok: false,
      code: 'INVALID_MESSAGE',
      message: `${path}: ${issue?.message ?? 'invalid'}`,
      details: { path, type },
      ...withCid,
      type,
      payload: obj.payload,
    };
  }
  // Nothing stripped (an unknown or forged sender field) or changed by the schema: the received
  // text says exactly what was validated. The checker said so already when it could (`exact`).
  if (Object.hasOwn(RELAYS, type)) {
    if (exact) return { ok: true, msg: parsed.data, ...withCid, verbatim: { text, keys: lastExact.keys } };
    if (sameTree(obj.payload, parsed.data.payload))
      return { ok: true, msg: parsed.data, ...withCid, verbatim: { text, keys: countKeys(obj.payload) } };
  }
  return { ok: true, msg: parsed.data, ...withCid };
}

/**
 * The path to the first object or array found more than `max` levels deep in `value` (the payload
 * itself is level 0), or null. Iterative (an explicit stack), so no input can overflow the call
 * stack, and it stops at the first one found.
 */
export function pathDeeperThan(value: unknown, max: number): (string | number)[] | null {
  if (typeof value !== 'object' || value === null) return null;
  const stack: { node: object; depth: number; path: (string | number)[] }[] = [
    { node: value, depth: 0, path: [] },
  ];
  while (stack.length > 0) {
    const { node, depth, path } = stack.pop() as (typeof stack)[number];
    if (depth > max) return path;
    const entries: [string | number, unknown][] = Array.isArray(node)
      ? node.map((v, i): [number, unknown] => [i, v])
      : Object.entries(node);
    for (const [key, child] of entries) {
      if (typeof child === 'object' && child !== null)
        stack.push({ node: child, depth: depth + 1, path: [...path, key] });
    }
  }
  return null;
}

/**
 * Whether an object or array sits more than `max` levels deep in `value` (at `depth`): the same
 * verdict as {@link pathDeeperThan} without building paths and entry arrays for every node (that
 * was 1 % of the relay's CPU). Recursion stops at `max + 1` levels, so no input can overflow the
 * stack; the path is looked for only when the answer is yes.
 */
function deeperThan(value: unknown, depth: number, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (depth > max) return true;
  if (Array.isArray(value)) {
    for (const child of value as unknown[]) if (deeperThan(child, depth + 1, max)) return true;
    return false;
  }
  for (const key of Object.keys(value)) {
    if (deeperThan((value as Record<string, unknown>)[key], depth + 1, max)) return true;
  }
  return false;
}

function isValidId(id: unknown): id is string | number {
  return typeof id === 'string' ? id.length >= 1 && id.length <= 128 : Number.isSafeInteger(id);
}
