/**
 * PTT fan-out generator (scenario 4), in its own process: 1,000 members of one channel per server
 * it is set up for (by default the scenario gives every server's members to one generator). A press is
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

/**
 * One server's members. A generator may hold several groups (the scenario's default: every server's
 * members in one receiving process); each press uses its own group's sockets and counters.
 */
interface Group {
  sockets: WebSocket[];
  kind: 'naive' | 'parley';
  roomId: string;
  changed: number;
  lastAt: number;
  firstAt: number;
  replyAt: number;
  wake: (() => void) | null;
  expectReply: boolean;
}

const groups = new Map<string, Group>();

function check(g: Group): void {
  if (g.changed >= g.sockets.length && (!g.expectReply || g.replyAt > 0)) g.wake?.();
}

function groupOf(name: string | undefined): Group {
  const g = groups.get(name ?? '');
  if (!g) throw new Error(`no members set up for "${name ?? ''}"`);
  return g;
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
    /** Which group (server) these members are; '' when the generator serves one server. */
    name?: string;
  }) {
    const { kind, roomId } = a;
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
    const sockets = opened.sockets;
    const g: Group = {
      sockets,
      kind,
      roomId,
      changed: 0,
      lastAt: 0,
      firstAt: 0,
      replyAt: 0,
      wake: null,
      expectReply: false,
    };
    groups.set(a.name ?? '', g);
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
          if (g.changed === 0) g.firstAt = at;
          g.changed++;
          g.lastAt = at;
          check(g);
        } else if (startsWith(data, GRANTED) || startsWith(data, STOPPED)) {
          g.replyAt = performance.now();
          check(g);
        }
      });
    }
    return { members: sockets.length, setupMs: round(performance.now() - t0, 0) };
  },

  async presses(a: { count: number; gapMs: number; name?: string }) {
    const g = groupOf(a.name);
    const { sockets, kind, roomId } = g;
    const speaker = sockets[0];
    const lastMs: number[] = [];
    const firstMs: number[] = [];
    const replyMs: number[] = [];
    const stopMs: number[] = [];
    const phase = async (type: 'ptt:start' | 'ptt:stop', cid: string): Promise<number> => {
      g.changed = 0;
      g.lastAt = g.firstAt = g.replyAt = 0;
      g.expectReply = kind === 'parley';
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${type}: ${g.changed}/${sockets.length} deliveries after 10 s`)),
          10_000,
        );
        g.wake = () => {
          clearTimeout(timer);
          g.wake = null;
          resolve();
        };
      });
      const t0 = performance.now();
      speaker.send(JSON.stringify({ type, payload: { roomId }, correlationId: cid }));
      check(g);
      await done;
      return t0;
    };
    for (let i = 0; i < a.count; i++) {
      const t0 = await phase('ptt:start', `s${i}`);
      lastMs.push(Math.max(g.lastAt, g.replyAt) - t0);
      firstMs.push(g.firstAt - t0);
      if (kind === 'parley') replyMs.push(g.replyAt - t0);
      await sleep(a.gapMs);
      const t1 = await phase('ptt:stop', `x${i}`);
      stopMs.push(Math.max(g.lastAt, g.replyAt) - t1);
      await sleep(a.gapMs);
    }
    return { lastMs, firstMs, replyMs, stopMs };
  },

  close() {
    for (const g of groups.values()) for (const s of g.sockets) s.terminate();
    groups.clear();
    return null;
  },
});
