/**
 * Relayed frames without re-encoding the payload. A relay forwards the client's payload minus its
 * addressing field, plus the server-set `senderId`/`senderName` (server-messages.ts, `relayed()`).
 * Building a copy of the payload and stringifying it again was the largest share of a relayed
 * message's JavaScript (docs/benchmarks.md), so when the received payload is exactly what the
 * schema accepted ({@link sameTree}: nothing stripped or changed, no sender field of its own), the
 * outgoing frame reuses the received payload's text: the addressing member is cut out and the
 * sender fields are appended. Anything this scanner is not sure about (escaped or duplicate keys,
 * a second `payload`) returns null, and the caller re-encodes the validated payload instead.
 */

/** A received relay frame whose payload is exactly what its schema accepted (codec.ts decides). */
export interface RelaySource {
  /** The frame's text as received. */
  readonly text: string;
  /**
   * How many object keys its payload holds at every depth, as JSON.parse gave it
   * ({@link countKeys}). The payload's text holds more when it repeats a key (JSON.parse keeps
   * one of the repeats): the splice then refuses it.
   */
  readonly keys: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * True when `validated` (a schema's output) is `raw` (what JSON.parse gave) with nothing removed,
 * added or transformed: same keys at every level, same array lengths, identical primitives. Then
 * the raw text says exactly what was validated.
 */
export function sameTree(raw: unknown, validated: unknown): boolean {
  if (raw === validated) return true;
  if (typeof raw !== 'object' || typeof validated !== 'object' || raw === null || validated === null)
    return false;
  if (Array.isArray(raw)) {
    if (!Array.isArray(validated) || raw.length !== validated.length) return false;
    for (let i = 0; i < raw.length; i++) if (!sameTree(raw[i], validated[i])) return false;
    return true;
  }
  if (Array.isArray(validated)) return false;
  const r = raw as Record<string, unknown>;
  const v = validated as Record<string, unknown>;
  let n = 0;
  for (const k in r) {
    if (!Object.hasOwn(v, k) || !sameTree(r[k], v[k])) return false;
    n++;
  }
  return n === Object.keys(v).length;
}

/** Index just past the string that starts (with its quote) at `i`. */
function endOfString(text: string, i: number): number {
  let j = i;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return -1;
    let backslashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return j + 1;
  }
}

function skipSpace(text: string, i: number): number {
  let j = i;
  for (;;) {
    const c = text.charCodeAt(j);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) j++;
    else return j;
  }
}

/**
 * What one pass over an object found (see {@link scanObject}). One object per scan and nothing
 * else: no member map, no key strings (a Map and a sliced key per member were 5 % of the relay's
 * CPU, hashing included, in the issue 14 fourth-pass profile).
 */
interface Scan {
  /** Index just past the object's `}`. */
  close: number;
  /** How many object keys the whole value holds, at every depth. */
  keys: number;
  /** How many members the object itself has (its top-level keys). */
  members: number;
  /** Index of the opening quote of the member named `key`, or -1 when there is none. */
  start: number;
  /** Index just past that member's value. */
  end: number;
  /** Index where that member's value starts. */
  value: number;
}

/**
 * One pass over the object starting at `open` (its `{`), looking for the top-level member named
 * `key`. `keys` counts object keys at every depth, so that duplicates (which JSON.parse folds)
 * show as a count that differs from the parsed tree's. Null on an escaped top-level key (it could
 * be `key` in disguise), a top-level `key` that appears twice, or text that ends too soon.
 * `startDepth` 1: `open` is inside the object already, after a member (the rest of an envelope).
 */
function scanObject(text: string, open: number, key: string, startDepth = 0): Scan | null {
  const scan: Scan = { close: -1, keys: 0, members: 0, start: -1, end: -1, value: -1 };
  let depth = startDepth;
  let i = open;
  /** Inside the member named `key` (at the top level), until its value ends. */
  let inKey = false;
  // (No closure and no allocation per member: this runs per relayed message.)
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = endOfString(text, i);
      if (end < 0) return null;
      const after = skipSpace(text, end);
      if (text.charCodeAt(after) === COLON) {
        scan.keys++;
        if (depth === 1) {
          scan.members++;
          if (hasBackslash(text, i + 1, end - 1)) return null;
          if (end - i - 2 === key.length && text.startsWith(key, i + 1)) {
            if (scan.start >= 0) return null;
            scan.start = i;
            scan.value = skipSpace(text, after + 1);
            inKey = true;
          }
        }
        i = after + 1;
      } else {
        i = end;
      }
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 1) {
        if (inKey) scan.end = trimEnd(text, i);
        scan.close = i + 1;
        return scan;
      }
      depth--;
    } else if (c === COMMA && depth === 1 && inKey) {
      scan.end = trimEnd(text, i);
      inKey = false;
    }
    i++;
  }
  return null;
}

function hasBackslash(text: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (text.charCodeAt(k) === BACKSLASH) return true;
  return false;
}

function trimEnd(text: string, i: number): number {
  let j = i;
  while (j > 0) {
    const c = text.charCodeAt(j - 1);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) j--;
    else break;
  }
  return j;
}

/** How many object keys a parsed JSON value holds, at every depth. */
export function countKeys(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value) n += countKeys(v);
    return n;
  }
  for (const k in value) n += 1 + countKeys((value as Record<string, unknown>)[k]);
  return n;
}

const TYPE_FIRST = '{"type":"';
const PAYLOAD_NEXT = ',"payload":{';

/**
 * Where the payload object starts (its `{`) when the frame begins exactly `{"type":"…","payload":{`
 * with nothing escaped in the type; -1 otherwise (the caller scans the whole envelope).
 */
function payloadAfterType(text: string): number {
  if (!text.startsWith(TYPE_FIRST)) return -1;
  const close = text.indexOf('"', TYPE_FIRST.length);
  if (close < 0 || hasBackslash(text, TYPE_FIRST.length, close)) return -1;
  if (!text.startsWith(PAYLOAD_NEXT, close + 1)) return -1;
  return close + PAYLOAD_NEXT.length;
}

/**
 * The relayed payload's JSON text from the received frame `text`: its `payload` object without the
 * member `drop`, with `senderFields` (`"senderId":…,"senderName":…`, already encoded) appended.
 * The payload's key count serves to find keys the text repeats. Null when the
 * frame is anything but plain (see the module comment): re-encode instead.
 */
export function splicePayload(
  { text, keys }: RelaySource,
  drop: string,
  senderFields: string,
): string | null {
  let valueStart = payloadAfterType(text);
  let body: Scan | null;
  if (valueStart >= 0) {
    // The SDK's own order, `{"type":"…","payload":{…},…}`: the payload is scanned once, and what
    // follows it must hold no second payload (nor an escaped key that could be one).
    body = scanObject(text, valueStart, drop);
    if (!body) return null;
    const rest = scanObject(text, body.close, 'payload', 1);
    if (!rest || rest.start >= 0) return null;
  } else {
    const start = skipSpace(text, 0);
    if (text.charCodeAt(start) !== OPEN_BRACE) return null;
    const envelope = scanObject(text, start, 'payload');
    if (!envelope || envelope.start < 0) return null;
    valueStart = envelope.value;
    if (text.charCodeAt(valueStart) !== OPEN_BRACE) return null;
    body = scanObject(text, valueStart, drop);
    if (!body || body.close !== envelope.end) return null;
  }
  if (body.keys !== keys) return null;
  const cut = body.start < 0 ? null : body;
  // The sender fields follow a comma unless nothing of the payload is left (no flattening of the
  // spliced text to find out: it is written out once, into the frame's buffer).
  const sep = body.members > (cut ? 1 : 0) ? ',' : '';
  let inner: string;
  if (!cut) inner = text.slice(valueStart + 1, body.close - 1);
  else {
    // Cut the member with the comma that joins it to the next one (or to the previous, if last).
    const before = text.slice(valueStart + 1, cut.start);
    let after = text.slice(cut.end, body.close - 1);
    const next = skipSpace(after, 0);
    if (after.charCodeAt(next) === COMMA) after = after.slice(next + 1);
    else {
      const trimmed = before.slice(0, trimEnd(before, before.length));
      inner = (trimmed.endsWith(',') ? trimmed.slice(0, -1) : trimmed) + after;
      return `{${inner}${sep}${senderFields}}`;
    }
    inner = before + after;
  }
  return `{${inner}${sep}${senderFields}}`;
}
