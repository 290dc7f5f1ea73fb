/**
 * What a cross-node relay pays for Redis pub/sub alone, in CPU per message, on each side: a
 * publisher process sends N frames of a relayed ICE candidate's size through a real redis-server to a
 * subscriber process, `batch` frames per event-loop turn, either one PUBLISH per frame or one PUBLISH
 * per turn carrying them all (what Parley's bus does since issue 14's fourth pass). CPU is each
 * process's own (process.cpuUsage: user + system, the kernel's socket work included), over the
 * messages only. No Parley code beyond the bus encoding: the floor under the cross-node relay.
 *
 *   node --import tsx bench/redis-pubsub-cost.ts          (in the loopback netns: sh scripts/in-loopback-netns.sh …)
 *
 * PACE_MS=1: paced, one turn per millisecond. MODES / BATCHES: which publishers and frames per turn
 * (comma-separated). SUB=raw: the subscriber reads RESP itself instead of through ioredis.
 */
import { fork } from 'node:child_process';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/redis.js';
import { encodeBus, encodeBusBatch, decodeBusMessages, type BusEntry } from '../src/server/cluster/bus.js';
import { frame } from '../src/server/wire/frame.js';

const N = Number(process.env.N ?? 30_000);
/** PACE_MS=1: one turn per millisecond (a paced load: each turn is a wake-up on both sides); unset: back to back. */
const PACE_MS = Number(process.env.PACE_MS ?? 0);
const role = process.argv[2];

function cpuUs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

/**
 * SUB=raw: the subscriber reads its socket itself (a RESP reader for `message` pushes and the
 * SUBSCRIBE reply only) instead of through ioredis: what a reader of our own would save per
 * publication on the receiving node. Unset: ioredis, as Parley's bus.
 */
const RAW_SUB = process.env.SUB === 'raw';

/** Pushes of a subscribed connection, parsed from RESP: each top-level reply as a list of Buffers and integers. */
function respReader(onReply: (parts: (Buffer | number)[]) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  const line = (at: number): [string, number] | null => {
    const end = buf.indexOf(13, at);
    if (end < 0 || end + 1 >= buf.length) return null;
    return [buf.toString('latin1', at + 1, end), end + 2];
  };
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let at = 0;
    for (;;) {
      const head = line(at);
      if (!head || buf[at] !== 42) break; // '*': pushes and replies of a subscriber are arrays
      let pos = head[1];
      const parts: (Buffer | number)[] = [];
      let complete = true;
      for (let i = Number(head[0]); i > 0; i--) {
        const l = line(pos);
        if (!l) {
          complete = false;
          break;
        }
        if (buf[pos] === 58) {
          parts.push(Number(l[0])); // ':'
          pos = l[1];
          continue;
        }
        const len = Number(l[0]); // '$'
        if (l[1] + len + 2 > buf.length) {
          complete = false;
          break;
        }
        parts.push(buf.subarray(l[1], l[1] + len));
        pos = l[1] + len + 2;
      }
      if (!complete) break;
      onReply(parts);
      at = pos;
    }
    buf = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
  };
}

if (role === 'sub') {
  const url = process.argv[3];
  let got = 0;
  let start: NodeJS.CpuUsage | null = null;
  const onPublication = (data: Buffer) => {
    start ??= process.cpuUsage();
    const msgs = decodeBusMessages(data);
    got += msgs?.length ?? 0;
    if (got >= N) {
      process.send?.({ cpuUsPerMsg: cpuUs(start) / got });
      got = 0;
      start = null;
    }
  };
  if (RAW_SUB) {
    const { port } = new URL(url);
    const sock = connect(Number(port), '127.0.0.1');
    sock.setNoDelay(true);
    let subscribed: () => void = () => undefined;
    sock.on(
      'data',
      respReader((parts) => {
        const kind = parts[0] instanceof Buffer ? parts[0].toString('latin1') : '';
        if (kind === 'message' && parts[2] instanceof Buffer) onPublication(parts[2]);
        else if (kind === 'subscribe') subscribed();
      }),
    );
    await new Promise<void>((r) => {
      subscribed = r;
      sock.write('*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nnode:b\r\n');
    });
  } else {
    const sub = new Redis(url);
    sub.on('messageBuffer', (_c: Buffer, data: Buffer) => onPublication(data));
    await sub.subscribe('node:b');
  }
  process.send?.('ready');
} else {
  const redis = await startRedis();
  const pub = new Redis(redis.url, { commandTimeout: 5_000 }); // as Parley's state client
  const f = frame('call:ice-candidate', {
    callId: 'call-0001',
    senderId: 'user-000001',
    senderName: 'User 1',
    candidate: {
      candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host generation 0',
      sdpMid: '0',
      sdpMLineIndex: 0,
    },
  });
  const entry: BusEntry = { header: { t: 'user', userId: 'user-000002', except: 'sess-000001' }, frame: f };
  const rows: Record<string, unknown>[] = [];
  // Raw RESP on a socket of its own, without ioredis: with Redis's replies read, or with
  // CLIENT REPLY OFF (no reply, so no wake-up to read one): what a reply-less publisher would save.
  const raw = async (replies: boolean) => {
    const sock = connect(redis.port, '127.0.0.1');
    sock.setNoDelay(true);
    await new Promise((r) => sock.once('connect', r));
    sock.on('data', () => undefined); // read and drop the replies
    if (!replies) sock.write('*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n');
    return sock;
  };
  const rawSocks = { 'raw-replies': await raw(true), 'raw-reply-off': await raw(false) };
  const respPublish = (data: Buffer) =>
    Buffer.concat([
      Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$6\r\nnode:b\r\n$${data.length}\r\n`),
      data,
      Buffer.from('\r\n'),
    ]);
  const modes = (process.env.MODES ?? 'per-frame,per-turn,raw-replies,raw-reply-off').split(',');
  for (const mode of modes as ('per-frame' | 'per-turn' | 'raw-replies' | 'raw-reply-off')[]) {
    for (const batch of (process.env.BATCHES ?? '1,3,10').split(',').map(Number)) {
      if (mode === 'per-turn' && batch === 1) continue; // the same as per-frame
      const child = fork(new URL(import.meta.url).pathname, ['sub', redis.url], {
        execArgv: ['--import', 'tsx'],
      });
      await new Promise((r) => child.once('message', r));
      const subResult = new Promise<{ cpuUsPerMsg: number }>((r) => child.once('message', r as never));
      const t0 = process.cpuUsage();
      let sent = 0;
      await new Promise<void>((done) => {
        const turn = () => {
          if (mode === 'per-frame')
            for (let i = 0; i < batch; i++)
              void pub.publish('node:b', encodeBus('a', entry.header, entry.frame));
          else if (mode === 'per-turn')
            void pub.publish('node:b', encodeBusBatch('a', Array<BusEntry>(batch).fill(entry)));
          else {
            const data =
              batch === 1
                ? encodeBus('a', entry.header, entry.frame)
                : encodeBusBatch('a', Array<BusEntry>(batch).fill(entry));
            rawSocks[mode].write(respPublish(data));
          }
          sent += batch;
          if (sent >= N) pub.ping().then(() => done(), done);
          else if (PACE_MS > 0) setTimeout(turn, PACE_MS);
          else setImmediate(turn);
        };
        turn();
      });
      const pubUs = cpuUs(t0) / sent;
      const sub = await subResult;
      child.kill();
      rows.push({
        mode,
        framesPerTurn: batch,
        paceMs: PACE_MS,
        publisherCpuUsPerMsg: +pubUs.toFixed(2),
        subscriber: RAW_SUB ? 'raw' : 'ioredis',
        subscriberCpuUsPerMsg: +sub.cpuUsPerMsg.toFixed(2),
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
  }
  pub.disconnect();
  for (const sock of Object.values(rawSocks)) sock.destroy();
  await redis.stop();
}
