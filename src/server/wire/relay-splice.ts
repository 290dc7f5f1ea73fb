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
  /** Its payload as JSON.parse gave it. */
  readonly payload: unknown;
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

interface Member {
  /** Index of the key's opening quote. */
  start: number;
  /** Index just past the value. */
  end: number;
}

/**
 * The members of the object starting at `open` (its `{`), by raw key text, and the index just past
 * its `}`. `keys`: how many object keys the whole value holds, at every depth (so that duplicates,
 * which JSON.parse folds, show as a count that differs from the parsed tree's). Null on an escaped
 * key or a key repeated at the top of this object.
 */
function scanObject(
  text: string,
  open: number,
): { members: Map<string, Member>; close: number; keys: number } | null {
  const members = new Map<string, Member>();
  let keys = 0;
  let depth = 0;
  let i = open;
  let memberKey: string | null = null;
  let memberStart = 0;
  // (No closure for ending a member: this runs per relayed message.)
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = endOfString(text, i);
      if (end < 0) return null;
      const after = skipSpace(text, end);
      if (text.charCodeAt(after) === COLON) {
        keys++;
        if (depth === 1) {
          const key = text.slice(i + 1, end - 1);
          if (key.includes('\\')) return null;
          memberKey = key;
          memberStart = i;
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
        if (memberKey !== null && !addMember(members, memberKey, memberStart, trimEnd(text, i))) return null;
        return { members, close: i + 1, keys };
      }
      depth--;
    } else if (c === COMMA && depth === 1) {
      if (memberKey !== null && !addMember(members, memberKey, memberStart, trimEnd(text, i))) return null;
      memberKey = null;
    }
    i++;
  }
  return null;
}

/** Records a member; false when its key is already there (JSON.parse would keep only the last). */
function addMember(members: Map<string, Member>, key: string, start: number, end: number): boolean {
  if (members.has(key)) return false;
  members.set(key, { start, end });
  return true;
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
function countKeys(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value) n += countKeys(v);
    return n;
  }
  for (const k in value) n += 1 + countKeys((value as Record<string, unknown>)[k]);
  return n;
}

/**
 * The relayed payload's JSON text from the received frame `text`: its `payload` object without the
 * member `drop`, with `senderFields` (`"senderId":…,"senderName":…`, already encoded) appended.
 * The parsed payload serves to find keys the text repeats. Null when the
 * frame is anything but plain (see the module comment): re-encode instead.
 */
export function splicePayload(
  { text, payload }: RelaySource,
  drop: string,
  senderFields: string,
): string | null {
  const start = skipSpace(text, 0);
  if (text.charCodeAt(start) !== OPEN_BRACE) return null;
  const envelope = scanObject(text, start);
  const member = envelope?.members.get('payload');
  if (!member) return null;
  const valueStart = skipSpace(text, text.indexOf(':', member.start + '"payload"'.length) + 1);
  if (text.charCodeAt(valueStart) !== OPEN_BRACE) return null;
  const body = scanObject(text, valueStart);
  if (!body || body.close !== member.end || body.keys !== countKeys(payload)) return null;
  const cut = body.members.get(drop);
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
      return `{${inner}${inner.trim() === '' ? '' : ','}${senderFields}}`;
    }
    inner = before + after;
  }
  return `{${inner}${inner.trim() === '' ? '' : ','}${senderFields}}`;
}
