/**
 * Shared state in Redis, for running many nodes. Every key starts with a configurable prefix
 * (default `parley:`); `{…}` in a key is literal, a Cluster hash tag, so all keys of one room sit in
 * one slot and each room's scripts stay single-slot.
 *
 * | Key                          | Type   | Contents                                         | TTL                        |
 * | ---------------------------- | ------ | ------------------------------------------------ | -------------------------- |
 * | `room:{<roomId>}:members`    | hash   | sessionId → JSON Participant                     | none; gone when empty      |
 * | `rooms`                      | set    | ids of rooms with at least one member            | none                       |
 * | `room:{<roomId>}:speaker`    | string | JSON HeldLock (holder + fence) of the PTT floor  | PX lock ttl, renewed       |
 * | `room:{<roomId>}:fence`      | string | integer: the last fence granted in the room      | 7 days, refreshed per grant|
 * | `resume:<tokenHash>`         | string | JSON ResumeRecord `{sessionId, userId}`          | PX token ttl               |
 * | `call:{<callId>}:<x>:<y>`    | hash   | a 1:1 call's CallRecord (x, y: its users, sorted) | PX call ttl, per step      |
 *
 * - Join is one Lua script (HEXISTS or HLEN < max → HSET, SADD `rooms`, return HVALS), so two nodes
 *   cannot both fill the last seat. Leave is HGET + HDEL (+ SREM when the room empties).
 * - The speaker lock is SET-NX-PX semantics in one script that also INCRs the fence; renew
 *   (PEXPIRE) and release (DEL) compare the fence first, so a stale holder can do neither. A fresh
 *   fence counter is seeded from the Redis clock in µs, so fences keep growing even after Redis
 *   loses its data or the counter expires (as long as that clock does not step back).
 * - A resume token is taken with DEL: only the caller that deleted it sees 1.
 * - JSON read back is validated (records.ts); a corrupt value counts as absent and is logged.
 *
 * Nothing here needs persistence. If Redis loses its data, live locks vanish (holders learn it at
 * their next renew), resume tokens die (those clients reconnect afresh), and memberships are gone
 * until sessions rejoin: the owning nodes still know their own members and can write them back.
 *
 * Topologies, by configuration only (see `RedisConnectOptions`):
 * - one Redis: `RedisState.connect('redis://host:6379/0')` (`rediss://` for TLS);
 * - Sentinel: `connect('redis://ignored', { redis: { sentinels: [{ host, port }], name: 'mymaster' } })`;
 * - Cluster: `connect('redis://a:7000,redis://b:7001', { cluster: true })` or
 *   `cluster: { redisOptions: { password } }`. On a Cluster the `rooms` index lives in another slot
 *   than the rooms, so it is kept by separate commands after each script (`roomIndex: 'separate'`)
 *   and `roomCount()` repairs it; everything per room stays atomic.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { defaults } from '../../config/defaults.js';
import { Hooks } from '../../events/hooks.js';
import { ParleyError } from '../../errors.js';
import { createLogger, type Logger } from '../../logger.js';
import type { Participant } from '../../../protocol/index.js';
import type {
  AcquireOutcome,
  CallRecord,
  CallStep,
  FloorHolder,
  HeldLock,
  JoinOutcome,
  LeaveOutcome,
  ResumeRecord,
  StateStore,
} from '../state-store.js';
import { ACQUIRE, CALL_STEP, isReplyError, JOIN, LEAVE, RELEASE, RENEW, type RedisClient } from './lua.js';
import { HeldLockSchema, ParticipantRecord, parseRecord, ResumeRecordSchema } from './records.js';

/** Redis client defaults (defaults.ts), with the key prefix REDIS_PREFIX defaults to. */
export const REDIS_DEFAULTS = { prefix: defaults.redisPrefix, ...defaults.redis } as const;

export interface RedisStateOptions {
  /** Prefix of every key; give each deployment sharing a Redis its own. No braces. Default `'parley:'`. */
  prefix?: string;
  /**
   * How the `rooms` index is kept. `'atomic'`: inside the join/leave scripts (one Redis, Sentinel).
   * `'separate'`: by commands after each script, repaired by `roomCount()`, for a Cluster where the
   * index and a room are in different slots. Default: `'separate'` on a Cluster, else `'atomic'`.
   */
  roomIndex?: 'atomic' | 'separate';
  /** Connection changes and corrupt values are logged here. Default: silent. */
  log?: Logger;
}

export interface RedisConnectOptions extends RedisStateOptions {
  /**
   * ioredis options laid over the fail-fast defaults (`redisClientOptions()`): `password`, `tls`,
   * `db`, or `sentinels` + `name` for Sentinel (then the URL's host is ignored). Default none.
   */
  redis?: RedisOptions;
  /**
   * Connect to a Redis Cluster; `url` is then a comma-separated list of seed node URLs. `true`, or
   * ioredis ClusterOptions laid over the fail-fast defaults. Default false.
   */
  cluster?: boolean | ClusterOptions;
  /** How long `connect()` waits for Redis to be ready. Default 10 000 ms. */
  startupTimeoutMs?: number;
}

/** Backoff with jitter: half the capped exponential delay plus a random part of the other half. */
export function reconnectDelayMs(attempt: number): number {
  const cap = Math.min(
    REDIS_DEFAULTS.reconnectBaseMs * 2 ** Math.max(0, attempt - 1),
    REDIS_DEFAULTS.reconnectMaxMs,
  );
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** Per-connection options shared by a single client and each node of a Cluster. */
function connectionOptions() {
  return {
    maxRetriesPerRequest: 1,
    commandTimeout: REDIS_DEFAULTS.commandTimeoutMs,
    connectTimeout: REDIS_DEFAULTS.connectTimeoutMs,
    // A command cut off by a dropped connection has failed for its caller; resending it later
    // could grant a lock nobody is waiting for.
    autoResendUnfulfilledCommands: false,
    // After a Sentinel failover the old master turns replica: reconnect to find the new one.
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
  } satisfies RedisOptions;
}

/**
 * ioredis options that make an operation fail within about a second while Redis is unreachable,
 * instead of queueing it until Redis returns (by then the client has given up and the lock TTLs
 * have passed), while the client keeps reconnecting by itself.
 */
export function redisClientOptions(): RedisOptions {
  return { ...connectionOptions(), enableOfflineQueue: false, retryStrategy: reconnectDelayMs };
}

/** Server replies that mean "not now" rather than "bad request". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM|NOREPLICAS)\b/;

export class RedisState implements StateStore {
  readonly kind = 'redis' as const;
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #atomicIndex: boolean;
  readonly #log: Logger;
  #lost = false;
  /**
   * Hardening fix (test/stress/faults.stress.ts, Redis partition): through a silent network partition
   * the socket stays "ready" while every command times out, so /health said ok throughout. Set by an
   * operation that failed for want of Redis, cleared by the next one that succeeds (the node registry
   * heartbeats every NODE_TTL_MS/3, so this follows the partition within a second) or by a reconnect.
   */
  #failing = false;
  #closing: Promise<void> | null = null;
  /** `restored`: the connection came back after an outage (Redis may have lost its data). */
  readonly hooks: Hooks<{ restored: [] }>;

  /** Takes ownership of `client` (close() quits it). Give it `redisClientOptions()` to fail fast. */
  constructor(client: RedisClient, opts: RedisStateOptions = {}) {
    const prefix = opts.prefix ?? REDIS_DEFAULTS.prefix;
    if (/[{}]/.test(prefix)) throw new TypeError('redis key prefix must not contain braces (hash tags)');
    this.#client = client;
    this.#prefix = prefix;
    this.#atomicIndex = (opts.roomIndex ?? (client.isCluster ? 'separate' : 'atomic')) === 'atomic';
    this.#log = opts.log ?? createLogger('silent');
    this.hooks = new Hooks('redis', this.#log);
    client.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'redis client error'));
    client.on('close', () => {
      if (this.#lost || this.#closing) return;
      this.#lost = true;
      this.#log.warn('redis connection lost; reconnecting');
    });
    client.on('ready', () => {
      this.#failing = false; // a fresh connection: whatever failed before, Redis answers now
      if (!this.#lost) return;
      this.#lost = false;
      this.#log.info('redis connection restored');
      void this.hooks.emit('restored');
    });
  }

  /** The underlying client, shared by the cluster directory and the bus publisher. */
  get client(): RedisClient {
    return this.#client;
  }

  get prefix(): string {
    return this.#prefix;
  }

  /** Runs a Redis operation with the same fail-fast error mapping as the store's own. */
  run<T>(op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    return this.#run(op, () => fn(this.#client));
  }

  /** Connects (see the file header for Sentinel and Cluster) and resolves once Redis is ready. */
  static async connect(url: string, opts: RedisConnectOptions = {}): Promise<RedisState> {
    let client: RedisClient;
    if (opts.cluster) {
      const { redisOptions, ...clusterOpts } = opts.cluster === true ? {} : opts.cluster;
      client = new Cluster(
        url.split(',').map((u) => u.trim()),
        {
          enableOfflineQueue: false,
          clusterRetryStrategy: reconnectDelayMs,
          ...clusterOpts,
          redisOptions: { ...connectionOptions(), ...redisOptions },
        },
      );
    } else {
      client = new Redis(url, { ...redisClientOptions(), ...opts.redis });
    }
    const state = new RedisState(client, opts);
    try {
      await whenReady(client, opts.startupTimeoutMs ?? REDIS_DEFAULTS.startupTimeoutMs);
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return state;
  }

  /** False while the connection is down or not yet ready, or while operations fail: /health reports degraded. */
  ready(): boolean {
    return this.#client.status === 'ready' && !this.#failing && !this.#closing;
  }

  async joinRoom(roomId: string, participant: Participant, maxParticipants: number): Promise<JoinOutcome> {
    const reply = await this.#run('joinRoom', () =>
      JOIN.run(this.#client, this.#roomKeys(roomId), [
        participant.sessionId,
        JSON.stringify(participant),
        maxParticipants,
        roomId,
      ]),
    );
    if (reply === null) return { status: 'full' };
    if (!this.#atomicIndex) await this.#indexAdd(roomId);
    return { status: 'joined', participants: this.#parseMembers(roomId, strings(reply)) };
  }

  async leaveRoom(roomId: string, sessionId: string): Promise<Participant | null> {
    return (await this.leaveRoomCounted(roomId, sessionId))?.participant ?? null;
  }

  async leaveRoomCounted(roomId: string, sessionId: string): Promise<LeaveOutcome | null> {
    const reply = await this.#run('leaveRoom', () =>
      LEAVE.run(this.#client, this.#roomKeys(roomId), [sessionId, roomId]),
    );
    if (reply === null) return null;
    const [entry, left] = reply as [string, number];
    if (!this.#atomicIndex && left === 0) await this.#indexDrop(roomId);
    const participant = parseRecord(
      ParticipantRecord,
      entry,
      this.#corrupt(this.#membersKey(roomId), sessionId),
    );
    return participant ? { participant, remaining: Number(left) } : null;
  }

  async roomIds(): Promise<string[]> {
    const index = this.#indexKey();
    const ids = await this.#run('roomIds', () => this.#client.smembers(index));
    if (this.#atomicIndex) return ids;
    const live = await this.#run('roomIds', () =>
      Promise.all(ids.map((id) => this.#client.exists(this.#membersKey(id)))),
    );
    return ids.filter((_, i) => live[i] === 1);
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#run('claimOnce', () =>
      this.#client.set(this.#claimKey(key), '1', 'PX', px(ttlMs), 'NX'),
    );
    return reply === 'OK';
  }

  async hasClaim(key: string): Promise<boolean> {
    return (await this.#run('hasClaim', () => this.#client.exists(this.#claimKey(key)))) === 1;
  }

  async participants(roomId: string): Promise<Participant[]> {
    const raw = await this.#run('participants', () => this.#client.hvals(this.#membersKey(roomId)));
    return this.#parseMembers(roomId, raw);
  }

  async roomCount(): Promise<number> {
    const index = this.#indexKey();
    if (this.#atomicIndex) return this.#run('roomCount', () => this.#client.scard(index));
    // Separate index: trust only entries whose members hash exists, and drop the rest.
    const ids = await this.#run('roomCount', () => this.#client.smembers(index));
    const live = await this.#run('roomCount', () =>
      Promise.all(ids.map((id) => this.#client.exists(this.#membersKey(id)))),
    );
    await Promise.all(ids.filter((_, i) => live[i] === 0).map((id) => this.#indexDrop(id)));
    return live.filter((n) => n === 1).length;
  }

  async putResumeToken(tokenHash: string, record: ResumeRecord, ttlMs: number): Promise<void> {
    const value = JSON.stringify({ sessionId: record.sessionId, userId: record.userId });
    await this.#run('putResumeToken', () =>
      this.#client.set(this.#resumeKey(tokenHash), value, 'PX', px(ttlMs)),
    );
  }

  async getResumeToken(tokenHash: string): Promise<ResumeRecord | null> {
    const raw = await this.#run('getResumeToken', () => this.#client.get(this.#resumeKey(tokenHash)));
    // The key holds the token's hash: log only the kind of key.
    return raw === null
      ? null
      : parseRecord(ResumeRecordSchema, raw, this.#corrupt(`${this.#prefix}resume:…`));
  }

  async takeResumeToken(tokenHash: string): Promise<boolean> {
    return (await this.#run('takeResumeToken', () => this.#client.del(this.#resumeKey(tokenHash)))) === 1;
  }

  async acquireSpeaker(
    roomId: string,
    holder: FloorHolder,
    ttlMs: number,
    replaceFence?: number,
  ): Promise<AcquireOutcome> {
    // Picked field by field: a caller passing a HeldLock must not smuggle in its old fence.
    const { sessionId, userId, name, nameVerified, priority, since } = holder;
    const reply = await this.#run('acquireSpeaker', () =>
      ACQUIRE.run(
        this.#client,
        [this.#speakerKey(roomId), this.#fenceKey(roomId)],
        [
          JSON.stringify({ sessionId, userId, name, nameVerified, priority, since }),
          px(ttlMs),
          replaceFence === undefined ? '' : String(replaceFence),
          REDIS_DEFAULTS.fenceTtlMs,
        ],
      ),
    );
    const [granted, value] = reply as [number, number | string];
    if (granted === 1) return { granted: true, fence: Number(value) };
    // The script validated the lock with the same rules as HeldLockSchema.
    const current = parseRecord(HeldLockSchema, String(value), this.#corrupt(this.#speakerKey(roomId)));
    if (!current) throw new Error('speaker lock failed validation after the script accepted it');
    return { granted: false, current };
  }

  async renewSpeaker(roomId: string, fence: number, ttlMs: number): Promise<boolean> {
    const reply = await this.#run('renewSpeaker', () =>
      RENEW.run(this.#client, [this.#speakerKey(roomId)], [String(fence), px(ttlMs)]),
    );
    return reply === 1;
  }

  async releaseSpeaker(roomId: string, fence: number): Promise<boolean> {
    const reply = await this.#run('releaseSpeaker', () =>
      RELEASE.run(this.#client, [this.#speakerKey(roomId)], [String(fence)]),
    );
    return reply === 1;
  }

  async currentSpeaker(roomId: string): Promise<HeldLock | null> {
    const key = this.#speakerKey(roomId);
    const raw = await this.#run('currentSpeaker', () => this.#client.get(key));
    return raw === null ? null : parseRecord(HeldLockSchema, raw, this.#corrupt(key));
  }

  async getCall(callKey: string): Promise<CallRecord | null> {
    const key = this.#callKey(callKey);
    const fields = await this.#run('getCall', () => this.#client.hgetall(key));
    return callRecordOf(fields);
  }

  async updateCall(callKey: string, step: CallStep, ttlMs: number): Promise<CallRecord | null> {
    const args: string[] =
      step.op === 'ring'
        ? [step.callerId, step.callerSession, JSON.stringify(step.rung)]
        : step.op === 'end'
          ? []
          : [step.session];
    const reply = await this.#run('updateCall', () =>
      CALL_STEP.run(this.#client, [this.#callKey(callKey)], [step.op, px(ttlMs), ...args]),
    );
    const flat = strings(reply);
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
    return callRecordOf(fields);
  }

  /** Quits the client (QUIT, or a hard disconnect when Redis is unreachable). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#client.quit().then(
      () => undefined,
      () => this.#client.disconnect(),
    );
    return this.#closing;
  }

  /**
   * Runs a Redis operation, turning "Redis is not there" (connection down, timeout, failover) into
   * SERVICE_UNAVAILABLE for the client. Other server errors are bugs and propagate unchanged.
   */
  async #run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.#failing = false;
      return result;
    } catch (err) {
      if (isReplyError(err) && !TRANSIENT_REPLY.test(err.message)) throw err;
      this.#failing = true;
      const message = err instanceof Error ? err.message : String(err);
      this.#log.debug({ op, err: message }, 'redis operation failed');
      throw Object.assign(new ParleyError('SERVICE_UNAVAILABLE', 'state backend (redis) unavailable'), {
        cause: err,
      });
    }
  }

  #parseMembers(roomId: string, raw: string[]): Participant[] {
    const onCorrupt = this.#corrupt(this.#membersKey(roomId));
    return raw
      .map((r) => parseRecord(ParticipantRecord, r, onCorrupt))
      .filter((p): p is Participant => p !== null)
      .sort((a, b) => a.joinedAt - b.joinedAt || (a.sessionId < b.sessionId ? -1 : 1));
  }

  #corrupt(key: string, field?: string): (why: string) => void {
    return (why) => this.#log.warn({ key, field, why }, 'ignoring corrupt value in redis');
  }

  /** The index is only a count here, so its upkeep failing must not fail the join or leave. */
  async #indexAdd(roomId: string): Promise<void> {
    try {
      await this.#client.sadd(this.#indexKey(), roomId);
    } catch (err) {
      this.#log.warn({ roomId, err: String(err) }, 'redis rooms index update failed');
    }
  }

  /** Removes an emptied room, then puts it back if a join raced in between (SREM after its SADD). */
  async #indexDrop(roomId: string): Promise<void> {
    try {
      await this.#client.srem(this.#indexKey(), roomId);
      if ((await this.#client.exists(this.#membersKey(roomId))) === 1) await this.#indexAdd(roomId);
    } catch (err) {
      this.#log.warn({ roomId, err: String(err) }, 'redis rooms index update failed');
    }
  }

  #roomKeys(roomId: string): string[] {
    const members = this.#membersKey(roomId);
    return this.#atomicIndex ? [members, this.#indexKey()] : [members];
  }

  #membersKey(roomId: string): string {
    return `${this.#prefix}room:{${roomId}}:members`;
  }

  #speakerKey(roomId: string): string {
    return `${this.#prefix}room:{${roomId}}:speaker`;
  }

  #fenceKey(roomId: string): string {
    return `${this.#prefix}room:{${roomId}}:fence`;
  }

  #resumeKey(tokenHash: string): string {
    return `${this.#prefix}resume:${tokenHash}`;
  }

  #claimKey(key: string): string {
    return `${this.#prefix}claim:${key}`;
  }

  /** `callKey` is `<callId>\u0000<x>\u0000<y>` (calls/call-answering.ts); the callId is the hash tag. */
  #callKey(callKey: string): string {
    const [callId = '', ...users] = callKey.split('\u0000');
    return `${this.#prefix}call:{${callId}}:${users.map(encodeURIComponent).join(':')}`;
  }

  #indexKey(): string {
    return `${this.#prefix}rooms`;
  }
}

/** PX wants a positive integer. */
function px(ttlMs: number): number {
  if (!Number.isFinite(ttlMs)) throw new RangeError(`ttl must be a finite number of ms, got ${ttlMs}`);
  return Math.max(1, Math.ceil(ttlMs));
}

function strings(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.filter((v): v is string => typeof v === 'string') : [];
}

function whenReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    // The URL may carry a password: keep it out of the message.
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`redis not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once('ready', onReady);
  });
}

/** A call hash read back; null when absent or missing its caller (a corrupt record counts as absent). */
function callRecordOf(fields: Record<string, string>): CallRecord | null {
  const { callerId, callerSession, rung, callee, ended } = fields;
  if (!callerId || !callerSession) return null;
  let rungList: string[] = [];
  try {
    const parsed: unknown = JSON.parse(rung ?? '[]');
    if (Array.isArray(parsed)) rungList = parsed.filter((v): v is string => typeof v === 'string');
  } catch {
    // a corrupt list rings nobody more
  }
  const busy = Object.keys(fields)
    .filter((f) => f.startsWith('busy:'))
    .map((f) => f.slice('busy:'.length));
  return { callerId, callerSession, rung: rungList, callee: callee ?? null, busy, ended: ended === '1' };
}
