import { describe, expect, it } from 'vitest';
import { RELAYS, ServerMessage } from '../../src/protocol/index.js';
import { decode } from '../../src/server/signaling/codec.js';
import { countKeys, sameTree, splicePayload } from '../../src/server/wire/relay-splice.js';
import { FuzzGenerator, type FuzzContext } from '../hardening/lib/fuzz-gen.js';

/**
 * The relayed payload spliced from the received text must say exactly what the re-encoded,
 * validated payload says: same fields, same values, the server's sender, no addressing field. And
 * whenever the received text could say something else than what was validated (a forged sender,
 * an unknown field the schema strips, a key JSON.parse folds), there is no splice at all.
 */

const SENDER = `"senderId":"alice","senderName":"Alice \\"A\\""`;
const SENDER_VALUE = { senderId: 'alice', senderName: 'Alice "A"' };

/** The slow path's relayed payload: the validated payload minus its addressing, plus the sender. */
function rebuilt(payload: Record<string, unknown>, drop: string): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...payload, ...SENDER_VALUE };
  delete rest[drop];
  return rest;
}

function dropOf(type: string): 'recipientId' | 'to' {
  return RELAYS[type as keyof typeof RELAYS] === 'call' ? 'recipientId' : 'to';
}

/** Decodes `text` and, when it may be spliced, checks the splice against the slow path. Returns whether it spliced. */
function check(text: string): boolean {
  const d = decode(text);
  if (!d.ok || !d.verbatim) return false;
  const payload = d.msg.payload as Record<string, unknown>;
  const drop = dropOf(d.msg.type);
  const spliced = splicePayload(d.verbatim, drop, SENDER);
  if (spliced === null) return false;
  const got = JSON.parse(spliced) as Record<string, unknown>;
  expect(got, text).toEqual(rebuilt(payload, drop));
  // And the server's own schema for the relayed message accepts it.
  expect(ServerMessage.safeParse({ type: d.msg.type, payload: got, timestamp: 1 }).success).toBe(true);
  return true;
}

const ice = {
  candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host',
  sdpMid: '0',
  sdpMLineIndex: 0,
};

describe('relayed payloads spliced from the received text', () => {
  it('splices plain frames, whatever the member order and spacing, and drops the addressing field', () => {
    const frames = [
      JSON.stringify({
        type: 'call:ice-candidate',
        payload: { recipientId: 'bob', callId: 'c1', candidate: ice },
      }),
      JSON.stringify({
        type: 'call:ice-candidate',
        payload: { callId: 'c1', candidate: ice, recipientId: 'bob' },
      }),
      JSON.stringify({
        type: 'call:ice-candidate',
        payload: { callId: 'c1', recipientId: 'bob', candidate: null },
      }),
      JSON.stringify({
        payload: { recipientId: 'bob', callId: 'c1', sdp: 'v=0\r\na="x":{}\r\n' },
        type: 'call:offer',
        timestamp: 5,
      }),
      JSON.stringify({ type: 'call:accept', payload: { callId: 'c1', recipientId: 'bob' } }),
      JSON.stringify({
        type: 'sdp:offer',
        payload: { roomId: 'r', to: 'bob', sdp: 'v=0 "payload":{"to":1}' },
      }),
      JSON.stringify({ type: 'ice:candidate', payload: { to: 'bob', roomId: 'r', candidate: ice } }),
      JSON.stringify({
        type: 'call:hangup',
        correlationId: 'x1',
        payload: { recipientId: 'b\\"o', callId: 'c1', reason: 'bye \\' },
      }),
      `{ "type" : "call:answer" ,\n "payload" : { "recipientId" : "bob" , "callId":"c1" , "sdp" : "v=0" } , "timestamp":1 }`,
      `{"type":"call:answer","payload":{"callId":"c1","sdp":"v=0","recipientId":"bob"   }}`,
      `{"type":"call:answer","payload":{"callId":"c1","sdp":"v=\\u0030 \\"\\\\","recipientId":"bob"}}`,
      JSON.stringify({ type: 'call:reject', payload: { recipientId: 'bob', callId: 'ç€😀' } }),
    ];
    for (const f of frames) expect(check(f), f).toBe(true);
  });

  it('never splices what the received text says beyond what was validated', () => {
    const refused = [
      // A forged sender: the schema strips it, the slow path overwrites it.
      JSON.stringify({
        type: 'call:offer',
        payload: { recipientId: 'bob', callId: 'c', sdp: 'v=0', senderId: 'mallory' },
      }),
      JSON.stringify({
        type: 'sdp:offer',
        payload: { roomId: 'r', to: 'b', sdp: 'v=0', senderName: 'Boss' },
      }),
      `{"type":"call:offer","payload":{"recipientId":"bob","callId":"c","sdp":"v=0","sender\\u0049d":"mallory"}}`,
      // Unknown fields, at the top of the payload or inside the candidate.
      JSON.stringify({
        type: 'call:offer',
        payload: { recipientId: 'bob', callId: 'c', sdp: 'v=0', extra: 1 },
      }),
      JSON.stringify({
        type: 'ice:candidate',
        payload: { to: 'b', roomId: 'r', candidate: { ...ice, x: 1 } },
      }),
      // Keys JSON.parse folds: the text holds something the parser (and the schema) never saw.
      `{"type":"call:offer","payload":{"recipientId":"bob","callId":"c","sdp":{"a":1},"sdp":"v=0"}}`,
      `{"type":"call:offer","payload":{"recipientId":"bob","callId":"c","sdp":"v=0"},"payload":{"recipientId":"bob","callId":"c","sdp":"v=0"}}`,
      `{"type":"call:offer","p\\u0061yload":{"recipientId":"eve","callId":"c","sdp":"x"},"payload":{"recipientId":"bob","callId":"c","sdp":"v=0"}}`,
      `{"type":"call:offer","payload":{"recipientId":"bob","callId":"c","sdp":"v=0"},"p\\u0061yload":{"recipientId":"bob","callId":"c","sdp":"v=1"}}`,
      `{"type":"ice:candidate","payload":{"to":"b","roomId":"r","candidate":{"candidate":"a","candidate":"b"}}}`,
      `{"type":"call:offer","payload":{"recipientId":"bob","recipient\\u0049d":"eve","callId":"c","sdp":"v=0"}}`,
    ];
    for (const f of refused) expect(check(f), f).toBe(false);
  });

  it('splices the edges of the member scan: a lone or missing addressing member, one-sided spacing', () => {
    const cases: [string, string, string][] = [
      // [received text, dropped member, expected spliced payload]
      [`{"type":"x","payload":{"to":"b"}}`, 'to', `{${SENDER}}`],
      [`{"type":"x","payload":{ "to" : "b" }}`, 'to', `{ ${SENDER}}`],
      [`{"type":"x","payload":{}}`, 'to', `{${SENDER}}`],
      [`{"type":"x","payload":{"a":1}}`, 'to', `{"a":1,${SENDER}}`],
      [`{"type":"x","payload":{"a":{"to":1},"to":"b"}}`, 'to', `{"a":{"to":1},${SENDER}}`],
      [`{"type":"x","payload":{"to":"b","a":[{"to":1}]}}`, 'to', `{"a":[{"to":1}],${SENDER}}`],
      // A key that only starts like the dropped one is kept.
      [`{"type":"x","payload":{"toe":1,"to":"b"}}`, 'to', `{"toe":1,${SENDER}}`],
      // A repeated envelope member other than payload says nothing about the payload's text.
      [`{"type":"x","type":"y","payload":{"a":1,"to":"b"}}`, 'to', `{"a":1,${SENDER}}`],
    ];
    for (const [text, drop, want] of cases) {
      const payload = (JSON.parse(text) as { payload: unknown }).payload;
      const got = splicePayload({ text, keys: countKeys(payload) }, drop, SENDER);
      expect(got, text).toBe(want);
      expect(JSON.parse(got as string), text).toEqual({
        ...(payload as Record<string, unknown>),
        ...SENDER_VALUE,
        [drop]: undefined,
      });
    }
    const refused: [string, string][] = [
      [`{"type":"x"}`, 'to'], // no payload
      [`{"type":"x","payload":[1]}`, 'to'], // not an object
      [`{"type":"x","payload":{"to":"b","to":"c"}}`, 'to'], // folded by JSON.parse
      [`{"type":"x","payload":{"t\\u006f":"b"}}`, 'to'], // escaped top-level key
      [`{"type":"x","payload":{"a":1}`, 'to'], // ends too soon
      [`[{"type":"x","payload":{"a":1}}]`, 'to'], // not an object
    ];
    for (const [text, drop] of refused) {
      let payload: unknown;
      try {
        payload = (JSON.parse(text) as { payload?: unknown }).payload;
      } catch {
        payload = undefined;
      }
      expect(splicePayload({ text, keys: countKeys(payload) }, drop, SENDER), text).toBeNull();
    }
  });

  it('sameTree: equal only with nothing removed, added or changed', () => {
    expect(sameTree({ a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] })).toBe(true);
    expect(sameTree({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(sameTree({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameTree({ a: 1 }, { b: 1 })).toBe(false);
    expect(sameTree({ a: '1' }, { a: 1 })).toBe(false);
    expect(sameTree([1, 2], [1])).toBe(false);
    expect(sameTree([], {})).toBe(false);
    expect(sameTree({ a: null }, { a: undefined })).toBe(false);
  });

  it('over the fuzz corpus: every spliced frame matches the slow path, and relays do splice', () => {
    const ctx: FuzzContext = {
      rooms: ['lobby', 'radio'],
      users: ['alice', 'bob', 'carol'],
      mediaIds: ['m1', 'm2'],
      maxFrameBytes: 64 * 1024,
    };
    let spliced = 0;
    let relays = 0;
    for (const seed of [1]) {
      const gen = new FuzzGenerator(seed);
      for (let i = 0; i < 3_000; i++) {
        const f = gen.frame(i, ctx);
        if (f.binary || typeof f.data !== 'string') continue;
        const d = decode(f.data);
        if (d.ok && Object.hasOwn(RELAYS, d.msg.type)) relays++;
        if (check(f.data)) spliced++;
      }
    }
    expect(relays).toBeGreaterThan(50);
    expect(spliced).toBeGreaterThan(0);
    // Generating and checking thousands of frames is CPU work: on a loaded machine it needs more
    // than the default 20 s (no speed is asserted).
  }, 120_000);
});
