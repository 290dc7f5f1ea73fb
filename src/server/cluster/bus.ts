import type { ServerMessageType, TrackSource } from '../../protocol/index.js';
import type { ErrorBody } from '../../protocol/index.js';
import type { AdminOp } from '../admin/admin-ops.js';
import type { MediaOp } from '../media/media-ops.js';
import type { Frame } from '../wire/frame.js';

/** What travels between nodes. A frame, when present, is already encoded: nodes only forward it. */
export type BusHeader =
  | { t: 'user'; userId: string; except?: string; only?: string[] }
  | { t: 'room'; roomId: string; except?: string }
  | { t: 'session-moved'; sessionId: string }
  // To every node: where this user's sessions live changed (directory-cache.ts drops its entry).
  | { t: 'directory'; userId: string }
  // To every node: a call's record changed (calls/call-records.ts drops its cached copy).
  | { t: 'call-record'; callKey: string }
  // The old node's answer to session-moved: what it buffered for the session while it was between
  // nodes, one frame per message, then `handoff-done` (frames of one publisher arrive in order).
  | { t: 'handoff-frame'; sessionId: string }
  | { t: 'handoff-done'; sessionId: string; missedFrames: boolean }
  | { t: 'floor'; roomId: string; fence: number; sessionId: string; by: { userId: string; name: string } }
  | {
      t: 'media-rpc';
      id: string;
      replyTo: string;
      session: RemoteSessionInfo;
      op: MediaOp;
      payload: unknown;
      holdsFloor?: boolean;
    }
  | { t: 'media-reply'; id: string; ok: true; result: unknown }
  | ({ t: 'media-reply'; id: string; ok: false } & ErrorBody)
  | { t: 'media-left'; sessionId: string; roomId: string }
  | { t: 'admin-rpc'; id: string; replyTo: string; op: AdminOp; payload: unknown }
  | { t: 'admin-reply'; id: string; ok: true; result: unknown }
  | ({ t: 'admin-reply'; id: string; ok: false } & ErrorBody);

/** A session on another node, as the node hosting a room's media sees it. */
export interface RemoteSessionInfo {
  id: string;
  userId: string;
  identity: {
    canPublish: boolean;
    canSubscribe: boolean;
    admin: boolean;
    /** The token's canPublishSources; absent or null: every source. */
    publishSources?: TrackSource[] | null;
  };
  rooms: string[];
}

export interface BusMessage {
  from: string;
  header: BusHeader;
  frame: Frame | null;
}

/**
 * Cross-node delivery. Each node subscribes to its own channel (messages for its users) and to the
 * channels of the rooms it has members in; nobody filters a global firehose.
 */
export interface Bus {
  /** Resolves with how many nodes received it (0: that node is gone, nobody will answer). */
  publishToNode(nodeId: string, header: BusHeader, frame: Frame | null): Promise<number>;
  /**
   * Like `publishToNode` for a message nobody awaits (a relayed frame): it leaves at the end of
   * this event-loop turn, in one publication with the other messages sent to that node in the
   * turn, and a failure is logged. Every publish keeps the order of the calls, whichever method.
   */
  sendToNode(nodeId: string, header: BusHeader, frame: Frame | null): void;
  publishToRoom(roomId: string, header: BusHeader, frame: Frame | null): Promise<void>;
  /** To every other node of the cluster. */
  publishToAll(header: BusHeader, frame: Frame | null): Promise<void>;
  subscribeRoom(roomId: string): void;
  unsubscribeRoom(roomId: string): void;
  /** Sets the one subscriber: the BusRouter, which hands each message kind to its handler. */
  onMessage(handler: (msg: BusMessage) => void): void;
  close(): Promise<void>;
}

/**
 * The bus format a node reads, advertised as `NodeInfo.bus` in the registry: 2 reads batches
 * (`encodeBusBatch`) as well as single messages. A record without it is a node of an earlier
 * release, which reads single messages (`encodeBus`) only, one per publication (bus-peers.ts).
 */
export const BUS_BATCH_FORMAT = 2;

/** `<header JSON>\n<frame type>\n<frame data>`: the frame is carried verbatim, never re-encoded. */
export function encodeBus(from: string, header: BusHeader, frame: Frame | null): Buffer {
  const head = JSON.stringify({ from, header });
  if (!frame) return Buffer.from(head);
  return Buffer.concat([Buffer.from(`${head}\n${frame.type}\n`), frame.data]);
}

/** One message of a batch: what `encodeBusBatch` carries for each. */
export interface BusEntry {
  header: BusHeader;
  frame: Frame | null;
}

/**
 * Several messages of one node in one publication: `{"from":…,"sizes":[n1,n2,…]}\n`, then each
 * message in n1, n2, … bytes as `<header JSON>\n<frame type>\n<frame data>` (or the header JSON
 * alone). One Redis command and one pub/sub delivery instead of one per message; the order inside
 * is the order given. Frames are copied once, into the batch, as `encodeBus` copies them.
 */
export function encodeBusBatch(from: string, entries: readonly BusEntry[]): Buffer {
  const parts: Buffer[] = [];
  const sizes: number[] = [];
  for (const { header, frame } of entries) {
    const head = JSON.stringify(header);
    if (!frame) {
      const b = Buffer.from(head);
      parts.push(b);
      sizes.push(b.length);
      continue;
    }
    const b = Buffer.from(`${head}\n${frame.type}\n`);
    parts.push(b, frame.data);
    sizes.push(b.length + frame.data.length);
  }
  parts.unshift(Buffer.from(`${JSON.stringify({ from, sizes })}\n`));
  return Buffer.concat(parts);
}

/** One publication as its messages, in order: one for `encodeBus`, several for `encodeBusBatch`. */
export function decodeBusMessages(data: Buffer): BusMessage[] | null {
  try {
    const nl = data.indexOf(10);
    const head = JSON.parse((nl < 0 ? data : data.subarray(0, nl)).toString('utf8')) as {
      from?: unknown;
      header?: unknown;
      sizes?: unknown;
    };
    const { from, sizes } = head;
    if (typeof from !== 'string') return null;
    if (sizes === undefined) {
      const one = withFrame(from, head.header as BusHeader, data, nl);
      return one ? [one] : null;
    }
    if (nl < 0 || !Array.isArray(sizes)) return null;
    const out: BusMessage[] = [];
    let at = nl + 1;
    for (const size of sizes as unknown[]) {
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || at + size > data.length)
        return null;
      const entry = decodeEntry(from, data.subarray(at, at + size));
      if (!entry) return null;
      out.push(entry);
      at += size;
    }
    return at === data.length ? out : null;
  } catch {
    return null;
  }
}

/** A batch entry: `<header JSON>[\n<frame type>\n<frame data>]`. Throws on bad JSON. */
function decodeEntry(from: string, data: Buffer): BusMessage | null {
  const nl = data.indexOf(10);
  const header = JSON.parse((nl < 0 ? data : data.subarray(0, nl)).toString('utf8')) as BusHeader;
  return withFrame(from, header, data, nl);
}

/** The message whose header line ends at `nl` (-1: no frame follows). */
function withFrame(from: string, header: BusHeader, data: Buffer, nl: number): BusMessage | null {
  if (typeof header !== 'object' || header === null) return null;
  if (nl < 0) return { from, header, frame: null };
  const nl2 = data.indexOf(10, nl + 1);
  if (nl2 < 0) return null;
  const type = data.subarray(nl + 1, nl2).toString('utf8') as ServerMessageType;
  return { from, header, frame: { type, data: data.subarray(nl2 + 1) } };
}
