import type { Logger } from '../logger.js';
import type { Frame } from '../wire/frame.js';
import type { Bus, BusHeader, BusMessage } from './bus.js';

type Header<K extends BusHeader['t']> = Extract<BusHeader, { t: K }>;

/** One handler per kind of bus message. A new kind without a handler is a compile error. */
export interface BusHandlers {
  /** A frame for some sessions of a user on this node. */
  user(h: Header<'user'>, f: Frame): void;
  /** A room broadcast from another node, for this node's members. */
  room(h: Header<'room'>, f: Frame): void;
  /** Another node changed where a user's sessions live. */
  directory(h: Header<'directory'>): void;
  /** Another node changed a call's record. */
  callRecord(h: Header<'call-record'>): void;
  /** A session of this node was resumed on another node (`from`), which waits for its buffer. */
  sessionMoved(h: Header<'session-moved'>, from: string): void;
  /** A frame the old node of a session we are adopting buffered for it. */
  handoffFrame(h: Header<'handoff-frame'>, f: Frame): void;
  /** The old node has sent everything it buffered for a session we are adopting. */
  handoffDone(h: Header<'handoff-done'>): void;
  /** A PTT floor was pre-empted from another node. */
  floor(h: Header<'floor'>): void;
  /** A media operation for a room whose media this node hosts. */
  mediaRpc(h: Header<'media-rpc'>, from: string): void;
  /** The answer to a media operation this node forwarded. */
  mediaReply(h: Header<'media-reply'>): void;
  /** A session of another node left a room whose media this node hosts. */
  mediaLeft(h: Header<'media-left'>): void;
  /** A server API operation another node asks this one to run. */
  adminRpc(h: Header<'admin-rpc'>, from: string): void;
  /** The answer to a server API operation this node forwarded. */
  adminReply(h: Header<'admin-reply'>): void;
}

/**
 * The only subscriber to the cluster bus: it switches exhaustively over the message kinds and
 * hands each to its one handler. A handler that throws is logged; the bus keeps going.
 */
export class BusRouter {
  readonly #handlers: BusHandlers;
  readonly #log: Logger;

  constructor(bus: Bus, handlers: BusHandlers, log: Logger) {
    this.#handlers = handlers;
    this.#log = log;
    bus.onMessage((msg) => this.#route(msg));
  }

  #route({ header, frame, from }: BusMessage): void {
    const h = this.#handlers;
    try {
      switch (header.t) {
        case 'user':
          if (frame) h.user(header, frame);
          return;
        case 'room':
          if (frame) h.room(header, frame);
          return;
        case 'directory':
          return h.directory(header);
        case 'call-record':
          return h.callRecord(header);
        case 'session-moved':
          return h.sessionMoved(header, from);
        case 'handoff-frame':
          if (frame) h.handoffFrame(header, frame);
          return;
        case 'handoff-done':
          return h.handoffDone(header);
        case 'floor':
          return h.floor(header);
        case 'media-rpc':
          return h.mediaRpc(header, from);
        case 'media-reply':
          return h.mediaReply(header);
        case 'media-left':
          return h.mediaLeft(header);
        case 'admin-rpc':
          return h.adminRpc(header, from);
        case 'admin-reply':
          return h.adminReply(header);
        default:
          return unknownKind(header, this.#log);
      }
    } catch (err) {
      this.#log.error({ err, kind: header.t, from }, 'bus message handler failed');
    }
  }
}

function unknownKind(header: never, log: Logger): void {
  // A newer node may send a kind this one does not know yet (rolling upgrade): ignore it.
  log.warn({ kind: (header as { t?: unknown }).t }, 'unknown bus message kind');
}
