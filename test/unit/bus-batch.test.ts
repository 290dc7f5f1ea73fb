import { describe, expect, it } from 'vitest';
import {
  decodeBusMessages,
  encodeBus,
  encodeBusBatch,
  type BusEntry,
  type BusMessage,
} from '../../src/server/cluster/bus.js';
import { PublishBatch } from '../../src/server/state/redis/publish-batch.js';
import { frame } from '../../src/server/wire/frame.js';
import { oldDecodeBus, oldEncodeBus } from '../helpers/old-bus-node.js';

/**
 * Relayed frames for another node leave once per event-loop turn, several in one Redis
 * publication. The encoding must give back every message, in order, byte for byte; anything
 * malformed is refused as a whole; and the per-turn queue keeps each channel's order.
 */

const ice = (n: number) =>
  frame('call:ice-candidate', {
    callId: `c${n}`,
    senderId: 'alice',
    senderName: 'Ålice ✓',
    candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 9 typ host\n(newline inside)`, sdpMid: '0' },
  });

const entries: BusEntry[] = [
  { header: { t: 'user', userId: 'bob', except: 's1' }, frame: ice(1) },
  { header: { t: 'directory', userId: 'zoë' }, frame: null },
  { header: { t: 'user', userId: 'bob', only: ['s2', 's3'] }, frame: ice(2) },
  {
    header: { t: 'room', roomId: 'r\n1' },
    frame: frame('call:ice-candidate', { callId: '', senderId: 'x', senderName: '', candidate: null }),
  },
];

/** A decoded message as plain data, to compare with what was encoded. */
function plain(m: BusMessage) {
  return {
    from: m.from,
    header: m.header,
    frame: m.frame && { type: m.frame.type, data: m.frame.data.toString('utf8') },
  };
}
const expected = (from: string, list: BusEntry[]) =>
  list.map((e) => ({
    from,
    header: e.header,
    frame: e.frame && { type: e.frame.type, data: e.frame.data.toString('utf8') },
  }));

describe('bus batch encoding', () => {
  it('gives back every message of a batch, in order, headers and frame bytes intact', () => {
    const decoded = decodeBusMessages(encodeBusBatch('node-a', entries));
    expect(decoded?.map(plain)).toEqual(expected('node-a', entries));
  });

  it('decodes a single encodeBus message as a list of one, with and without a frame', () => {
    for (const e of entries) {
      const decoded = decodeBusMessages(encodeBus('node-b', e.header, e.frame));
      expect(decoded?.map(plain)).toEqual(expected('node-b', [e]));
    }
  });

  it('a single message is the previous release’s format, byte for byte, and its decoder reads it', () => {
    for (const e of entries) {
      const now = encodeBus('node-b', e.header, e.frame);
      expect(now.equals(oldEncodeBus('node-b', e.header, e.frame))).toBe(true);
      const old = oldDecodeBus(now);
      expect(old && plain(old)).toEqual(expected('node-b', [e])[0]);
    }
    expect(encodeBus('n', { t: 'directory', userId: 'u' }, null).toString('utf8')).toBe(
      '{"from":"n","header":{"t":"directory","userId":"u"}}',
    );
  });

  it('the previous release cannot read a batch (why batches go only to nodes that say they read them)', () => {
    const old = oldDecodeBus(encodeBusBatch('node-a', entries));
    // It parses the first line and takes the rest for one frame: a message without a header.
    expect(old?.header).toBeUndefined();
  });

  it('a batch of one is a valid batch too', () => {
    const decoded = decodeBusMessages(encodeBusBatch('n', entries.slice(0, 1)));
    expect(decoded?.map(plain)).toEqual(expected('n', entries.slice(0, 1)));
  });

  it('refuses a malformed publication as a whole, never a part of it', () => {
    const good = encodeBusBatch('node-a', entries);
    const nl = good.indexOf(10);
    const body = good.subarray(nl + 1);
    const withHead = (head: string) => Buffer.concat([Buffer.from(`${head}\n`), body]);
    const sizes = (JSON.parse(good.subarray(0, nl).toString()) as { sizes: number[] }).sizes;
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(body.length);
    const bad: [string, Buffer][] = [
      ['truncated by one byte', good.subarray(0, good.length - 1)],
      ['one byte too many', Buffer.concat([good, Buffer.from('x')])],
      ['sizes not an array', withHead(JSON.stringify({ from: 'node-a', sizes: 3 }))],
      ['a negative size', withHead(JSON.stringify({ from: 'node-a', sizes: [-1, ...sizes] }))],
      ['a zero size', withHead(JSON.stringify({ from: 'node-a', sizes: [0, ...sizes] }))],
      ['a fractional size', withHead(JSON.stringify({ from: 'node-a', sizes: [1.5, ...sizes] }))],
      ['a size as a string', withHead(JSON.stringify({ from: 'node-a', sizes: sizes.map(String) }))],
      ['sizes beyond the data', withHead(JSON.stringify({ from: 'node-a', sizes: [...sizes, 10] }))],
      [
        'sizes that cut an entry in two',
        withHead(JSON.stringify({ from: 'node-a', sizes: [sizes[0] - 5, sizes[1] + 5, ...sizes.slice(2)] })),
      ],
      ['no sender', withHead(JSON.stringify({ sizes }))],
      ['a sender that is not a string', withHead(JSON.stringify({ from: 7, sizes }))],
      ['a head that is not JSON', withHead('{from')],
      ['no header line at all', Buffer.from('{"from":"a","sizes":[3]}')],
      ['an entry header that is not JSON', Buffer.from('{"from":"a","sizes":[5]}\n{t:1}')],
      ['an entry header that is not an object', Buffer.from('{"from":"a","sizes":[4]}\nnull')],
      ['an entry with a type but no data line', Buffer.from('{"from":"a","sizes":[13]}\n{"t":"user"}\n')],
      ['empty', Buffer.alloc(0)],
      ['a single message whose header is not an object', Buffer.from('{"from":"a","header":3}')],
    ];
    for (const [what, data] of bad) expect(decodeBusMessages(data), what).toBeNull();
    // The good one still decodes: nothing above was a fluke of the decoder's state.
    expect(decodeBusMessages(good)).toHaveLength(entries.length);
  });
});

describe('PublishBatch: what is added in one event-loop turn leaves together at its end', () => {
  const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('sends nothing during the turn, then each channel once, its messages in the order added', async () => {
    const sent: [string, string[]][] = [];
    const batch = new PublishBatch((channel, list) =>
      sent.push([channel, list.map((e) => (e.header as { userId: string }).userId)]),
    );
    for (let i = 0; i < 5; i++) {
      batch.add('node:b', { header: { t: 'user', userId: `b${i}` }, frame: ice(i) });
      batch.add('node:c', { header: { t: 'user', userId: `c${i}` }, frame: ice(i) });
    }
    expect(sent).toEqual([]);
    expect(batch.pendingForTesting).toBe(10);
    await turnEnd();
    expect(sent).toEqual([
      ['node:b', ['b0', 'b1', 'b2', 'b3', 'b4']],
      ['node:c', ['c0', 'c1', 'c2', 'c3', 'c4']],
    ]);
    expect(batch.pendingForTesting).toBe(0);
    // The next turn starts a new batch, and an empty turn sends nothing.
    batch.add('node:b', { header: { t: 'user', userId: 'b5' }, frame: ice(5) });
    await turnEnd();
    await turnEnd();
    expect(sent.slice(2)).toEqual([['node:b', ['b5']]]);
  });

  it('flush() sends what is pending at once (a publish that bypasses the batch keeps its place)', async () => {
    const sent: string[] = [];
    const batch = new PublishBatch((channel, list) => sent.push(`${channel}:${list.length}`));
    batch.add('node:b', { header: { t: 'user', userId: 'u' }, frame: ice(1) });
    batch.add('node:b', { header: { t: 'user', userId: 'u' }, frame: ice(2) });
    batch.flush();
    sent.push('direct publish');
    batch.add('node:b', { header: { t: 'user', userId: 'u' }, frame: ice(3) });
    batch.flush();
    batch.flush(); // nothing pending: nothing sent
    await turnEnd(); // the scheduled end-of-turn flush finds nothing either
    expect(sent).toEqual(['node:b:2', 'direct publish', 'node:b:1']);
  });
});
