import type {
  CallRelayType,
  ClientMessageOf,
  RoomRelayType,
  ServerMessageType,
  ServerPayload,
} from '../../protocol/index.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RoomFanout } from '../rooms/room-fanout.js';
import type { Session } from '../sessions/session.js';
import type { DeliveryFilter, UserMailbox } from '../sessions/user-delivery.js';
import type { StateStore } from '../state/state-store.js';
import type { Clock } from '../time/clock.js';
import { timestampText, type Frame } from '../wire/frame.js';
import { splicePayload, type RelaySource } from '../wire/relay-splice.js';
import { defaults } from '../config/defaults.js';
import { Hooks } from '../events/hooks.js';
import { background } from '../lifecycle/background.js';
import type { CallsConfig } from '../config/env.js';
import { CallAnswering, callKeyOf, type CallPlan } from './call-answering.js';
import { CallRoutes, type CallRoute } from './call-routes.js';
import { RelayBudget } from './relay-budget.js';
import { CallRecords } from './call-records.js';
import { CallRegistry, type CallChange, type CallEndReason, type CallInfo } from './call-registry.js';

/**
 * What the call relay tells the rest of the server (webhooks): each call's start, answer and end,
 * once across the cluster even when both sides' nodes see them (a claim in shared state decides).
 */
export type CallEvents = {
  started: [call: CallInfo];
  answered: [call: CallInfo, at: number];
  /** `answered`: anywhere in the cluster (the answer may have been seen by the other side's node). */
  ended: [call: CallInfo, reason: CallEndReason, at: number, answered: boolean];
};

/** The shared-state claim that makes a call's change announced once (and marks an ended call). */
export function callClaimKey(kind: CallChange['kind'], callKey: string): string {
  return `call-${kind}:${callKey}`;
}

/**
 * Peer-to-peer signaling relay: 1:1 calls (to every connection of a user) and in-room relay (to a
 * member of a room the sender is in). The sender is always the authenticated session; any
 * identity field in the payload is dropped by the schema and replaced here. Where the recipient's
 * sessions live is user delivery's business.
 */
export class CallRelay {
  readonly #users: UserMailbox;
  readonly #rooms: RoomFanout;
  readonly #metrics: Metrics;
  readonly #store: StateStore;
  readonly #clustered: boolean;
  readonly #clock: Clock;
  readonly calls: CallRegistry;
  readonly hooks: Hooks<CallEvents>;
  readonly #log: Logger;
  readonly #answering: CallAnswering;
  readonly #policy: CallsConfig['policy'];
  readonly #budget: RelayBudget;
  /** Call records through the node-local cache; `records.onChanged` is the bus's way in. */
  readonly records: CallRecords;
  /** Call messages relayed without waiting, and through the async path (tests). */
  readonly #paths = { now: 0, later: 0 };
  /** Each sender session's last call of trickled candidates, planned once (call-routes.ts). */
  readonly #iceRoutes = new CallRoutes();
  /** Each sender session's last offer or answer in a known call, planned once (call-routes.ts). */
  readonly #sdpRoutes = new CallRoutes();

  constructor(deps: {
    users: UserMailbox;
    rooms: RoomFanout;
    store: StateStore;
    metrics: Metrics;
    log: Logger;
    clustered: boolean;
    clock: Clock;
    /** CALL_POLICY and the per-recipient relay budget. */
    config: CallsConfig;
    /** Tells the other nodes that a call's record changed (their `records.onChanged`). */
    callChanged?: (callKey: string) => void;
  }) {
    this.#users = deps.users;
    this.#rooms = deps.rooms;
    this.#store = deps.store;
    this.#metrics = deps.metrics;
    this.#clustered = deps.clustered;
    this.#clock = deps.clock;
    this.calls = new CallRegistry(deps.log, deps.clock);
    this.hooks = new Hooks('calls', deps.log);
    this.#log = deps.log;
    this.records = new CallRecords(deps.store, deps.clock, deps.callChanged ?? null);
    this.#answering = new CallAnswering(this.records);
    this.#policy = deps.config.policy;
    this.#budget = new RelayBudget(deps.config.relayBudget, deps.clock);
  }

  /** Tells listeners of a call's change if this node is the first in the cluster to claim it. */
  #announce(change: CallChange | null): void {
    if (!change) return;
    const work = this.#store
      .claimOnce(callClaimKey(change.kind, change.call.key), defaults.callClaimTtlMs)
      .then(async (first) => {
        if (!first) return;
        if (change.kind === 'started') return this.hooks.emit('started', change.call);
        if (change.kind === 'answered')
          return this.hooks.emit('answered', change.call, change.call.answeredAt ?? this.#clock.now());
        const answered =
          change.call.answeredAt !== null ||
          (await this.#store.hasClaim(callClaimKey('answered', change.call.key)).catch(() => false));
        return this.hooks.emit('ended', change.call, change.reason, change.at, answered);
      });
    background(work, this.#log, 'announce a call change');
  }

  /**
   * call:* — deliver to every session of recipientId, on any node (never back to the sending
   * session), or, once one of the callee's devices answered, to the one session of each side
   * (the multi-device rules: {@link CallAnswering}).
   *
   * Synchronous when this node already knows everything the message needs: where the recipient's
   * sessions are (this node's, or the directory cache's) and the call's record (or that there is
   * none), and the message changes nothing in it (an offer, answer or candidate in a known call).
   * Then nothing is awaited, so the connection's next message runs at once too (Connection.process
   * runs a task inline only when nothing of that connection is pending, so order is kept).
   * Otherwise (the first offer, a cache miss, a call that ends or is answered) it returns a promise.
   */
  relayCall(
    session: Session,
    msg: ClientMessageOf<CallRelayType>,
    receivedAt: number,
    verbatim?: RelaySource,
  ): void | Promise<void> {
    const { recipientId, callId } = msg.payload;
    // Encoded once, before anything else: its size is what the recipient's budget pays.
    const f = relayFrame(msg.type, msg.payload, 'recipientId', session, verbatim);
    this.#budget.take(session.userId, recipientId, f.data.length, receivedAt);
    const ice = msg.type === 'call:ice-candidate';
    const routes = ice ? this.#iceRoutes : ROUTED_SDP.has(msg.type) ? this.#sdpRoutes : null;
    if (routes !== null) {
      const route = routes.get(
        session,
        msg.type,
        recipientId,
        callId,
        this.#users.routesEpoch,
        this.records.epoch,
        this.calls.epoch,
        receivedAt,
      );
      if (route !== undefined) {
        this.#paths.now++;
        this.#deliverRoute(route, f, receivedAt);
        return;
      }
    }
    const known = this.#clustered ? this.#users.knownRemoteSessions(recipientId) : NOWHERE_ELSE;
    const plan = known && this.#answering.planNow(session, { type: msg.type, recipientId, callId });
    if (known && plan) {
      this.#paths.now++;
      if (ice) {
        const route = this.#route(session, msg.type, recipientId, callId, receivedAt, known, plan, null);
        this.#iceRoutes.set(session, route);
        this.#deliverRoute(route, f, receivedAt);
        return;
      }
      const done = this.#deliverPlan(session, msg, f, receivedAt, known, plan);
      // Delivered (it throws when nobody is there) and nothing more to tell: the next one of this
      // type in this call may take the same way, while the registry tracks nothing new (its epoch
      // read now, after this message was tracked).
      if (routes !== null && done === undefined && plan.deliver !== null)
        routes.set(
          session,
          this.#route(session, msg.type, recipientId, callId, receivedAt, known, plan, this.calls.epoch),
        );
      return done;
    }
    this.#paths.later++;
    return this.#relayCallLater(session, msg, f, receivedAt, known);
  }

  /**
   * The route of a message planned synchronously, to keep for the sender's next ones of its type
   * in the call. A candidate is delivered through it as `#deliverPlan` would (a candidate changes
   * nothing in the call, tracks nothing, and for nobody is dropped silently); an offer or answer
   * was delivered by `#deliverPlan` already. Everything read here is this turn's state, so the
   * epochs read now are the ones it was planned under.
   */
  #route(
    session: Session,
    type: CallRelayType,
    recipientId: string,
    callId: string,
    receivedAt: number,
    byNode: ReadonlyMap<string, string[]>,
    plan: CallPlan,
    callsEpoch: number | null,
  ): CallRoute {
    const filter: DeliveryFilter | null =
      plan.deliver === null ? null : plan.deliver === 'everyone' ? { except: session.id } : plan.deliver;
    const local: Session[] = [];
    const remoteNodes: string[] = [];
    if (filter !== null) {
      for (const s of iterate(this.#users.local(recipientId, filter))) local.push(s);
      for (const [nodeId, ids] of byNode) if (ids.some((id) => passes(id, filter))) remoteNodes.push(nodeId);
    }
    const recordUntil =
      this.records.expiresAt(callKeyOf(callId, session.userId, recipientId)) ??
      receivedAt + defaults.callRecordCacheTtlMs;
    return {
      type,
      recipientId,
      callId,
      local,
      remoteNodes,
      filter: filter ?? {},
      routesEpoch: this.#users.routesEpoch,
      recordsEpoch: this.records.epoch,
      callsEpoch,
      expiresAt: Math.min(recordUntil, this.#users.knownUntil(recipientId)),
    };
  }

  #deliverRoute(route: CallRoute, f: Frame, receivedAt: number): void {
    const { local, remoteNodes } = route;
    // Nobody to deliver to: trickled candidates for someone gone (or for no call) are noise. (An
    // offer's or answer's route is kept only when it reached someone, and holds while they stay.)
    if (local.length === 0 && remoteNodes.length === 0) return;
    for (let i = 0; i < local.length; i++) local[i].deliver(f);
    for (let i = 0; i < remoteNodes.length; i++)
      this.#users.deliverOnNodeQuietly(remoteNodes[i], route.recipientId, f, route.filter);
    this.#observe(receivedAt);
  }

  /** Candidates relayed through a kept route (tests). */
  get iceRouteHitsForTesting(): number {
    return this.#iceRoutes.hitsForTesting;
  }

  /** Offers and answers relayed through a kept route (tests). */
  get sdpRouteHitsForTesting(): number {
    return this.#sdpRoutes.hitsForTesting;
  }

  /** How many call messages took the synchronous path (`now`) and the async one (`later`). */
  get relayPathsForTesting(): { now: number; later: number } {
    return { ...this.#paths };
  }

  async #relayCallLater(
    session: Session,
    msg: ClientMessageOf<CallRelayType>,
    f: Frame,
    receivedAt: number,
    known: ReadonlyMap<string, string[]> | undefined,
  ): Promise<void> {
    const { recipientId, callId } = msg.payload;
    const byNode = known ?? (await this.#users.remoteSessions(recipientId));
    const plan = await this.#answering.plan(
      session,
      {
        type: msg.type,
        recipientId,
        callId,
        reason: 'reason' in msg.payload ? msg.payload.reason : undefined,
      },
      () => [
        ...idsOf(this.#users.local(recipientId, { except: session.id })),
        ...[...byNode.values()].flat(),
      ],
      () => this.#sessionsOf(session.userId),
      () => this.#mayCall(session, recipientId),
    );
    await this.#deliverPlan(session, msg, f, receivedAt, byNode, plan);
  }

  #deliverPlan(
    session: Session,
    msg: ClientMessageOf<CallRelayType>,
    f: Frame,
    receivedAt: number,
    byNode: ReadonlyMap<string, string[]>,
    plan: CallPlan,
  ): void | Promise<void> {
    if (plan.deliver === null) return;
    const filter: DeliveryFilter = plan.deliver === 'everyone' ? { except: session.id } : plan.deliver;
    const remoteNodes = [...byNode].filter(([, ids]) => ids.some((id) => passes(id, filter))).map(([n]) => n);
    this.#deliverCall(session, msg, f, receivedAt, remoteNodes, filter);
    if (plan.answeredElsewhere)
      return this.#answeredElsewhere(session, msg.payload.callId, plan.answeredElsewhere);
  }

  /** The other devices that rang stop ringing: another one answered first. */
  async #answeredElsewhere(
    session: Session,
    callId: string,
    what: NonNullable<CallPlan['answeredElsewhere']>,
  ): Promise<void> {
    if (what.sessions.length === 0) return;
    const f = serverFrame('call:answered-elsewhere', {
      callId,
      callerId: what.callerId,
      outcome: what.outcome,
    });
    const filter = { only: what.sessions };
    this.#users.deliverLocal(session.userId, f, filter);
    if (!this.#clustered) return;
    const byNode = await this.#users.remoteSessions(session.userId).catch(() => new Map<string, string[]>());
    for (const [nodeId, ids] of byNode) {
      if (ids.some((id) => passes(id, filter)))
        this.#users.deliverOnNodeQuietly(nodeId, session.userId, f, filter);
    }
  }

  /** Every live session of a user, on any node. */
  async #sessionsOf(userId: string): Promise<ReadonlySet<string>> {
    const ids = new Set(idsOf(this.#users.local(userId)));
    if (this.#clustered) {
      const byNode = await this.#users.remoteSessions(userId).catch(() => new Map<string, string[]>());
      for (const list of byNode.values()) for (const id of list) ids.add(id);
    }
    return ids;
  }

  /**
   * CALL_POLICY: whether `session` may start a call with `recipientId`. `shared-room`: the
   * recipient is a member of one of the caller's rooms (this node's members first, then shared
   * state). Only asked for an offer that starts a call, never per relayed message.
   */
  async #mayCall(session: Session, recipientId: string): Promise<boolean> {
    if (this.#policy === 'any' || recipientId === session.userId) return true;
    for (const roomId of session.rooms.keys()) {
      for (const s of this.#rooms.localMembers(roomId) ?? []) if (s.userId === recipientId) return true;
    }
    if (!this.#clustered) return false;
    for (const roomId of session.rooms.keys()) {
      if ((await this.#store.participants(roomId)).some((p) => p.userId === recipientId)) return true;
    }
    return false;
  }

  #deliverCall(
    session: Session,
    msg: ClientMessageOf<CallRelayType>,
    f: Frame,
    receivedAt: number,
    remoteNodes: string[],
    filter: DeliveryFilter,
  ): void {
    const { recipientId, callId } = msg.payload;
    const hasLocal = this.#users.hasLocal(recipientId, filter);
    if (!hasLocal && remoteNodes.length === 0) {
      // Trickled candidates for someone gone are noise, not an error worth a reply.
      if (msg.type === 'call:ice-candidate') return;
      if (msg.type === 'call:hangup' || msg.type === 'call:reject')
        this.#announce(
          this.calls.end(
            session.userId,
            recipientId,
            callId,
            msg.type === 'call:reject' ? 'rejected' : 'hangup',
          ),
        );
      throw new ParleyError('RECIPIENT_OFFLINE', `user "${recipientId}" is not connected`);
    }
    this.#announce(this.calls.track(msg.type, session.userId, recipientId, callId));
    this.#users.deliverLocal(recipientId, f, filter);
    for (const nodeId of remoteNodes) this.#users.deliverOnNodeQuietly(nodeId, recipientId, f, filter);
    this.#observe(receivedAt);
  }

  /** sdp:offer / sdp:answer / ice:candidate — both sides must be members of roomId. */
  relayInRoom(
    session: Session,
    msg: ClientMessageOf<RoomRelayType>,
    receivedAt: number,
    verbatim?: RelaySource,
  ): void | Promise<void> {
    const { roomId, to } = msg.payload;
    if (!session.rooms.has(roomId)) throw new ParleyError('NOT_IN_ROOM', `you are not in room "${roomId}"`);
    const f = relayFrame(msg.type, msg.payload, 'to', session, verbatim);
    this.#budget.take(session.userId, to, f.data.length, receivedAt);
    let delivered = 0;
    for (const s of this.#rooms.localMembers(roomId) ?? []) {
      if (s.userId !== to || s === session) continue;
      s.deliver(f);
      delivered++;
    }
    if (delivered > 0 || !this.#clustered) {
      if (delivered === 0) throw notInRoom(roomId, to);
      this.#observe(receivedAt);
      return;
    }
    return this.#relayInRoomAcrossNodes(session, roomId, to, f, receivedAt);
  }

  async #relayInRoomAcrossNodes(
    session: Session,
    roomId: string,
    to: string,
    f: Frame,
    receivedAt: number,
  ): Promise<void> {
    const members = new Set(
      (await this.#store.participants(roomId))
        .filter((p) => p.userId === to && p.sessionId !== session.id)
        .map((p) => p.sessionId),
    );
    const byNode = await this.#users.remoteSessions(to, (id) => members.has(id));
    if (byNode.size === 0) throw notInRoom(roomId, to);
    for (const [nodeId, only] of byNode) await this.#users.deliverOnNode(nodeId, to, f, { only });
    this.#observe(receivedAt);
  }

  /**
   * The bus: another node changed a call's record. The cached record and the answered call kept in
   * memory are dropped; a call this node tracks that ended there is forgotten here too (that node
   * announced its end), so its users leaving later do not end it a second time.
   */
  readonly onRecordChanged = (callKey: string): void => {
    this.records.onChanged(callKey);
    this.#answering.forget(callKey);
    if (!this.calls.tracksRecord(callKey)) return;
    const check = this.records.get(callKey).then((rec) => {
      if (rec?.ended) this.calls.forgetRecord(callKey);
    });
    background(check, this.#log, 'forget a call ended on another node');
  };

  /** Session-end listener: the other side of each of the user's calls gets a hang-up. */
  readonly onSessionEnded = async (session: Session): Promise<void> => {
    if (!this.#users.local(session.userId).next().done) return; // still online here
    if (this.#clustered) {
      const elsewhere = await this.#users
        .remoteSessions(session.userId, (id) => id !== session.id)
        .catch(() => new Map<string, string[]>());
      if (elsewhere.size > 0) return; // still online on another node
    }
    for (const call of this.calls.endAllOf(session.userId)) {
      const key = callKeyOf(call.callId, session.userId, call.peerId);
      // Ended already (on another node, whose end this one has not heard of yet): told once.
      const rec = await this.records.get(key).catch(() => null);
      if (rec?.ended) continue;
      // Over for both sides now: its late messages are refused as ended, on every node. (A store
      // that fails here only leaves them routed to nobody, as before.)
      await this.#answering.end(key).catch(() => undefined);
      this.#announce(call.change);
      const f = serverFrame('call:hangup', {
        callId: call.callId,
        senderId: session.userId,
        senderName: session.identity.name,
        reason: 'disconnected',
      });
      this.#users.deliverLocal(call.peerId, f);
      if (!this.#clustered) continue;
      const nodes = await this.#users.remoteSessions(call.peerId).catch(() => new Map<string, string[]>());
      for (const nodeId of nodes.keys()) {
        await this.#users.deliverOnNode(nodeId, call.peerId, f).catch(() => undefined);
      }
    }
  };

  #observe(receivedAt: number): void {
    this.#metrics.relayLatency.observe((this.#clock.monotonic() - receivedAt) / 1000);
  }
}

/** The call messages besides candidates that take a kept route in a known call: renegotiation. */
const ROUTED_SDP: ReadonlySet<CallRelayType> = new Set(['call:offer', 'call:answer']);

/** A single node: the recipient has no sessions on another one. */
const NOWHERE_ELSE: ReadonlyMap<string, string[]> = new Map();

function notInRoom(roomId: string, to: string): ParleyError {
  return new ParleyError('NOT_IN_ROOM', `user "${to}" is not in room "${roomId}"`, { roomId, to });
}

/** A message of the server's own (not relayed), with its server-side payload. */
function serverFrame<T extends ServerMessageType>(type: T, payload: ServerPayload<T>): Frame {
  return { type, data: Buffer.from(JSON.stringify({ type, payload, timestamp: Date.now() })) };
}

function* iterate<T>(it: Iterator<T>): Generator<T> {
  for (let r = it.next(); !r.done; r = it.next()) yield r.value;
}

function idsOf(sessions: Iterator<Session>): string[] {
  const ids: string[] = [];
  for (let r = sessions.next(); !r.done; r = sessions.next()) ids.push(r.value.id);
  return ids;
}

function passes(id: string, filter: DeliveryFilter): boolean {
  if (filter.only) return filter.only.includes(id);
  return id !== filter.except;
}

/**
 * The relayed frame: the client's validated payload without its addressing field `drop`, plus the
 * sender the server knows (server-messages.ts, `relayed()`). With `verbatim` (the payload was
 * received exactly as validated), the received payload text is reused instead of re-encoded.
 */
function relayFrame(
  type: ServerMessageType,
  payload: Record<string, unknown>,
  drop: 'recipientId' | 'to',
  sender: Session,
  verbatim: RelaySource | undefined,
): Frame {
  const spliced = verbatim && splicePayload(verbatim, drop, senderFields(sender));
  if (spliced) {
    const text = `{"type":${JSON.stringify(type)},"payload":${spliced},"timestamp":${timestampText()}}`;
    return { type, data: Buffer.from(text) };
  }
  const rest: Record<string, unknown> = {
    ...payload,
    senderId: sender.userId,
    senderName: sender.identity.name,
  };
  delete rest[drop];
  return { type, data: Buffer.from(JSON.stringify({ type, payload: rest, timestamp: Date.now() })) };
}

/**
 * `"senderId":…,"senderName":…`, encoded once per identity: a token refresh replaces a session's
 * identity object rather than changing it.
 */
const senderFieldsOf = new WeakMap<object, { userId: string; fields: string }>();
function senderFields(sender: Session): string {
  const known = senderFieldsOf.get(sender.identity);
  if (known?.userId === sender.userId) return known.fields;
  const fields = `"senderId":${JSON.stringify(sender.userId)},"senderName":${JSON.stringify(sender.identity.name)}`;
  senderFieldsOf.set(sender.identity, { userId: sender.userId, fields });
  return fields;
}
