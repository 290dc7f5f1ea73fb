import { Redis } from 'ioredis';
import type { ServerMessageType } from '../../src/protocol/index.js';
import type { BusHeader, BusMessage } from '../../src/server/cluster/bus.js';
import type { NodeInfo } from '../../src/server/cluster/directory.js';
import type { Frame } from '../../src/server/wire/frame.js';

/**
 * A node of the release before batched bus publications, as far as the bus sees it: its registry
 * record (no `bus` field), a session of one user, and a real Redis subscriber on its node channel
 * that decodes every publication with that release's single-message decoder, frozen below as it
 * was (not imported, so later changes to bus.ts cannot make it more forgiving).
 *
 * What the old node could not handle is counted in `unreadable`: a publication its decoder
 * refuses, or one it decodes into a message without a header (a batch: its BusRouter then throws
 * reading `header.t`, logs a handler error, and every message in it is lost).
 */

/** The previous release's `encodeBus`, verbatim. */
export function oldEncodeBus(from: string, header: BusHeader, frame: Frame | null): Buffer {
  const head = JSON.stringify({ from, header });
  if (!frame) return Buffer.from(head);
  return Buffer.concat([Buffer.from(`${head}\n${frame.type}\n`), frame.data]);
}

/** The previous release's `decodeBus`, verbatim. */
export function oldDecodeBus(data: Buffer): BusMessage | null {
  try {
    const nl = data.indexOf(10);
    const head = JSON.parse((nl < 0 ? data : data.subarray(0, nl)).toString('utf8')) as Omit<
      BusMessage,
      'frame'
    >;
    if (nl < 0) return { ...head, frame: null };
    const nl2 = data.indexOf(10, nl + 1);
    if (nl2 < 0) return null;
    const type = data.subarray(nl + 1, nl2).toString('utf8') as ServerMessageType;
    return { ...head, frame: { type, data: data.subarray(nl2 + 1) } };
  } catch {
    return null;
  }
}

export interface OldBusNode {
  nodeId: string;
  /** Publications on its node channel, readable or not. */
  publications: number;
  /** Publications it could not read (each would have been dropped whole, with an error logged). */
  unreadable: number;
  /** The user messages it read, in order of arrival. */
  userMessages: BusMessage[];
  /** Publishes on another node's channel the way the old release does (one message per publication). */
  publishToNode(nodeId: string, header: BusHeader, frame: Frame | null): Promise<number>;
  /** Rewrites its registry record, as the node restarted on another release would at its first heartbeat. */
  register(info: Partial<NodeInfo>): Promise<void>;
  close(): void;
}

export async function startOldBusNode(opts: {
  redisPath: string;
  nodeId: string;
  /** Its one user's session, registered in the directory as the old node would. */
  session: { userId: string; sessionId: string };
  prefix?: string;
}): Promise<OldBusNode> {
  const p = opts.prefix ?? 'parley:';
  const { nodeId, session } = opts;
  const admin = new Redis({ path: opts.redisPath });
  const sub = new Redis({ path: opts.redisPath });
  const register = async (extra: Partial<NodeInfo>) => {
    const info = { nodeId, startedAt: Date.now(), address: '127.0.0.1:1', ...extra };
    await admin
      .multi()
      .hset(`${p}nodes`, nodeId, JSON.stringify(info))
      .set(`${p}node:{${nodeId}}:alive`, '1', 'PX', 120_000)
      .exec();
  };
  await register({});
  await admin
    .multi()
    .hset(`${p}user:{${session.userId}}:sessions`, session.sessionId, nodeId)
    .hset(`${p}session:{${session.sessionId}}`, 'userId', session.userId, 'nodeId', nodeId)
    .sadd(`${p}node:{${nodeId}}:sessions`, session.sessionId)
    .exec();
  const node: OldBusNode = {
    nodeId,
    publications: 0,
    unreadable: 0,
    userMessages: [],
    publishToNode: (to, header, frame) =>
      admin.publish(`${p}node:${to}`, oldEncodeBus(nodeId, header, frame)),
    register,
    close: () => {
      sub.disconnect();
      admin.disconnect();
    },
  };
  sub.on('messageBuffer', (_channel: Buffer, data: Buffer) => {
    node.publications++;
    const msg = oldDecodeBus(data);
    // The old BusRouter reads `header.t` first: a message without a header object throws there.
    const header: unknown = msg?.header;
    if (!msg || typeof header !== 'object' || header === null || !('t' in header)) {
      node.unreadable++;
      return;
    }
    if (msg.header.t === 'user') node.userMessages.push(msg);
  });
  await sub.subscribe(`${p}node:${nodeId}`);
  return node;
}
