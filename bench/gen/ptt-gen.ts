/**
 * PTT fan-out generator (scenario 4), in its own process: 1,000 members of one channel. A press is
 * `ptt:start` from member 0; the sample is the time until the LAST of the 1,000
 * `ptt:speaker-changed` deliveries (and, on Parley, the speaker's `ptt:granted`) has arrived. Then
 * `ptt:stop`, and the next press once everything has settled. Frames are recognised by their
 * prefix, without parsing, so the generator's own cost per delivery stays small and identical for
 * every server.
 */
import type { WebSocket } from 'ws';
import { openMany } from '../lib/clients.js';
import { serve } from '../lib/ipc.js';
import { Rpc } from '../lib/rpc.js';
import { round, sleep } from '../lib/stats.js';
import { tokensFor } from '../lib/tokens.js';

const CHANGED = Buffer.from('{"type":"ptt:speaker-changed"');
const GRANTED = Buffer.from('{"type":"ptt:granted"');
const STOPPED = Buffer.from('{"type":"ptt:stopped"');

function startsWith(data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

let sockets: WebSocket[] = [];
let kind: 'naive' | 'parley' = 'parley';
let roomId = 'fanout';
let changed = 0;
let lastAt = 0;
let firstAt = 0;
let replyAt = 0;
let wake: (() => void) | null = null;
let expectReply = false;

function check(): void {
  if (changed >= sockets.length && (!expectReply || replyAt > 0)) wake?.();
}

serve({
  async setup(a: {
    kind: 'naive' | 'parley';
    url: string;
    members: number;
    roomId: string;
    prefix: string;
    /** Naive: each member sends one `join` and waits for its reply first (as Parley's members join). */
    joinExchange?: boolean;
  }) {
    kind = a.kind;
    roomId = a.roomId;
    const ids = Array.from({ length: a.members }, (_, i) => `${a.prefix}${i}`);
    const tokens = kind === 'parley' ? await tokensFor(ids) : [];
    const t0 = performance.now();
    const opened = await openMany(a.members, 25, (i) => ({
      protocol: kind === 'parley' ? 'parley' : 'raw',
      url: a.url,
      id: ids[i],
      token: tokens[i],
    }));
    if (opened.failures)
      throw new Error(`${opened.failures} members failed to connect: ${opened.firstError}`);
    sockets = opened.sockets;
    if (kind === 'parley') {
      let next = 0;
      const joiner = async () => {
        while (next < sockets.length) {
          const rpc = new Rpc(sockets[next++]);
          await rpc.call('room:join', { roomId }, 'room:state', 30_000);
        }
      };
      await Promise.all(Array.from({ length: 10 }, joiner));
      // The joins' request/reply listeners are done: each member keeps only the one listener
      // below, as the naive broadcaster's members do, so the generator's cost per delivery is the
      // same for every server.
      for (const ws of sockets) ws.removeAllListeners('message');
    } else if (a.joinExchange) {
      for (const ws of sockets) {
        await new Promise<void>((resolve) => {
          ws.once('message', () => resolve());
          ws.send(JSON.stringify({ type: 'join', payload: { roomId } }));
        });
      }
    }
    for (const ws of sockets) {
      ws.on('message', (data: Buffer) => {
        if (startsWith(data, CHANGED)) {
          const at = performance.now();
          if (changed === 0) firstAt = at;
          changed++;
          lastAt = at;
          check();
        } else if (startsWith(data, GRANTED) || startsWith(data, STOPPED)) {
          replyAt = performance.now();
          check();
        }
      });
    }
    return { members: sockets.length, setupMs: round(performance.now() - t0, 0) };
  },

  async presses(a: { count: number; gapMs: number }) {
    const speaker = sockets[0];
    const lastMs: number[] = [];
    const firstMs: number[] = [];
    const replyMs: number[] = [];
    const stopMs: number[] = [];
    const phase = async (type: 'ptt:start' | 'ptt:stop', cid: string): Promise<number> => {
      changed = 0;
      lastAt = firstAt = replyAt = 0;
      expectReply = kind === 'parley';
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${type}: ${changed}/${sockets.length} deliveries after 10 s`)),
          10_000,
        );
        wake = () => {
          clearTimeout(timer);
          wake = null;
          resolve();
        };
      });
      const t0 = performance.now();
      speaker.send(JSON.stringify({ type, payload: { roomId }, correlationId: cid }));
      check();
      await done;
      return t0;
    };
    for (let i = 0; i < a.count; i++) {
      const t0 = await phase('ptt:start', `s${i}`);
      lastMs.push(Math.max(lastAt, replyAt) - t0);
      firstMs.push(firstAt - t0);
      if (kind === 'parley') replyMs.push(replyAt - t0);
      await sleep(a.gapMs);
      const t1 = await phase('ptt:stop', `x${i}`);
      stopMs.push(Math.max(lastAt, replyAt) - t1);
      await sleep(a.gapMs);
    }
    return { lastMs, firstMs, replyMs, stopMs };
  },

  close() {
    for (const s of sockets) s.terminate();
    sockets = [];
    return null;
  },
});
