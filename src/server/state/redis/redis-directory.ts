import type { ClusterDirectory, NodeInfo, SessionRecord } from '../../cluster/directory.js';
import type { RedisState } from './redis-state.js';

/**
 * The cluster directory in Redis. Keys (after the prefix):
 *
 * | Key                          | Type   | Contents                                 | TTL            |
 * | ---------------------------- | ------ | ---------------------------------------- | -------------- |
 * | `user:{<userId>}:sessions`   | hash   | sessionId → nodeId                       | none           |
 * | `session:{<sessionId>}`      | hash   | userId, nodeId                           | none           |
 * | `session:{<sessionId>}:rooms`| set    | roomIds the session is a member of       | none           |
 * | `node:{<nodeId>}:sessions`   | set    | sessionIds the node terminates           | none           |
 * | `nodes`                      | hash   | nodeId → JSON NodeInfo                   | none           |
 * | `node:{<nodeId>}:alive`      | string | "1"                                      | PX node ttl    |
 * | `node:{<nodeId>}:reaper`     | string | nodeId of the survivor cleaning up       | PX claim ttl   |
 * | `room:{<roomId>}:media-owner`| string | nodeId hosting the room's media          | PX, renewed    |
 *
 * Entries without TTL are removed by their owner, or by the survivor that reaps a dead node.
 */
/** Claim if free, refresh if ours; return the owner. */
const CLAIM_OWNER = `
local owner = redis.call('GET', KEYS[1])
if not owner or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner`;

/** Compare-and-delete. */
const RELEASE_OWNER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class RedisDirectory implements ClusterDirectory {
  readonly #r: RedisState;
  readonly #p: string;

  constructor(state: RedisState) {
    this.#r = state;
    this.#p = state.prefix;
  }

  registerSession(rec: SessionRecord): Promise<void> {
    return this.#r.run('registerSession', async (c) => {
      await c
        .multi()
        .hset(this.#user(rec.userId), rec.sessionId, rec.nodeId)
        .hset(this.#session(rec.sessionId), 'userId', rec.userId, 'nodeId', rec.nodeId)
        .sadd(this.#nodeSessions(rec.nodeId), rec.sessionId)
        .exec();
    });
  }

  unregisterSession(rec: SessionRecord): Promise<void> {
    return this.#r.run('unregisterSession', async (c) => {
      await c.srem(this.#nodeSessions(rec.nodeId), rec.sessionId);
      const owner = await c.hget(this.#session(rec.sessionId), 'nodeId');
      if (owner !== null && owner !== rec.nodeId) return; // resumed elsewhere: not ours to delete
      await c.hdel(this.#user(rec.userId), rec.sessionId);
      await c.del(this.#session(rec.sessionId), this.#sessionRooms(rec.sessionId));
    });
  }

  sessionsOfUser(userId: string): Promise<SessionRecord[]> {
    return this.#r.run('sessionsOfUser', async (c) => {
      const all = await c.hgetall(this.#user(userId));
      return Object.entries(all).map(([sessionId, nodeId]) => ({ sessionId, userId, nodeId }));
    });
  }

  session(sessionId: string): Promise<SessionRecord | null> {
    return this.#r.run('session', async (c) => {
      const h = await c.hgetall(this.#session(sessionId));
      return h.userId && h.nodeId ? { sessionId, userId: h.userId, nodeId: h.nodeId } : null;
    });
  }

  moveSession(rec: SessionRecord): Promise<string | null> {
    return this.#r.run('moveSession', async (c) => {
      const previous = await c.hget(this.#session(rec.sessionId), 'nodeId');
      if (previous && previous !== rec.nodeId) await c.srem(this.#nodeSessions(previous), rec.sessionId);
      await c
        .multi()
        .hset(this.#session(rec.sessionId), 'userId', rec.userId, 'nodeId', rec.nodeId)
        .hset(this.#user(rec.userId), rec.sessionId, rec.nodeId)
        .sadd(this.#nodeSessions(rec.nodeId), rec.sessionId)
        .exec();
      return previous;
    });
  }

  sessionsOfNode(nodeId: string): Promise<SessionRecord[]> {
    return this.#r.run('sessionsOfNode', async (c) => {
      const ids = await c.smembers(this.#nodeSessions(nodeId));
      const out: SessionRecord[] = [];
      for (const sessionId of ids) {
        const h = await c.hgetall(this.#session(sessionId));
        if (h.userId) out.push({ sessionId, userId: h.userId, nodeId: h.nodeId ?? nodeId });
      }
      return out;
    });
  }

  addSessionRoom(sessionId: string, roomId: string): Promise<void> {
    return this.#r.run('addSessionRoom', async (c) => {
      await c.sadd(this.#sessionRooms(sessionId), roomId);
    });
  }

  removeSessionRoom(sessionId: string, roomId: string): Promise<void> {
    return this.#r.run('removeSessionRoom', async (c) => {
      await c.srem(this.#sessionRooms(sessionId), roomId);
    });
  }

  sessionRooms(sessionId: string): Promise<string[]> {
    return this.#r.run('sessionRooms', (c) => c.smembers(this.#sessionRooms(sessionId)));
  }

  heartbeat(info: NodeInfo, ttlMs: number): Promise<void> {
    return this.#r.run('heartbeat', async (c) => {
      await c
        .multi()
        .hset(this.#nodes(), info.nodeId, JSON.stringify(info))
        .set(this.#alive(info.nodeId), '1', 'PX', Math.max(1, Math.ceil(ttlMs)))
        .exec();
    });
  }

  nodes(): Promise<{ info: NodeInfo; alive: boolean }[]> {
    return this.#r.run('nodes', async (c) => {
      const all = await c.hgetall(this.#nodes());
      const out: { info: NodeInfo; alive: boolean }[] = [];
      for (const [nodeId, json] of Object.entries(all)) {
        let info: NodeInfo;
        try {
          info = JSON.parse(json) as NodeInfo;
        } catch {
          info = { nodeId, startedAt: 0, address: '?' };
        }
        out.push({ info, alive: (await c.exists(this.#alive(nodeId))) === 1 });
      }
      return out;
    });
  }

  node(nodeId: string): Promise<NodeInfo | null> {
    return this.#r.run('node', async (c) => {
      const json = await c.hget(this.#nodes(), nodeId);
      if (json === null) return null;
      try {
        return JSON.parse(json) as NodeInfo;
      } catch {
        return { nodeId, startedAt: 0, address: '?' };
      }
    });
  }

  claimDeadNode(nodeId: string, claimer: string, ttlMs: number): Promise<boolean> {
    return this.#r.run('claimDeadNode', async (c) => {
      const ok = await c.set(this.#reaper(nodeId), claimer, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
      return ok === 'OK';
    });
  }

  forgetNode(nodeId: string): Promise<void> {
    return this.#r.run('forgetNode', async (c) => {
      await c.hdel(this.#nodes(), nodeId);
      await c.del(this.#nodeSessions(nodeId));
    });
  }

  markNodeGone(nodeId: string): Promise<void> {
    return this.#r.run('markNodeGone', async (c) => {
      await c.del(this.#alive(nodeId));
    });
  }

  claimMediaOwner(roomId: string, nodeId: string, ttlMs: number): Promise<string> {
    return this.#r.run('claimMediaOwner', async (c) => {
      const owner = await c.eval(
        CLAIM_OWNER,
        1,
        this.#mediaOwner(roomId),
        nodeId,
        Math.max(1, Math.ceil(ttlMs)),
      );
      return String(owner);
    });
  }

  releaseMediaOwner(roomId: string, nodeId: string): Promise<void> {
    return this.#r.run('releaseMediaOwner', async (c) => {
      await c.eval(RELEASE_OWNER, 1, this.#mediaOwner(roomId), nodeId);
    });
  }

  #mediaOwner(roomId: string) {
    return `${this.#p}room:{${roomId}}:media-owner`;
  }
  #user(userId: string) {
    return `${this.#p}user:{${userId}}:sessions`;
  }
  #session(sessionId: string) {
    return `${this.#p}session:{${sessionId}}`;
  }
  #sessionRooms(sessionId: string) {
    return `${this.#p}session:{${sessionId}}:rooms`;
  }
  #nodeSessions(nodeId: string) {
    return `${this.#p}node:{${nodeId}}:sessions`;
  }
  #nodes() {
    return `${this.#p}nodes`;
  }
  #alive(nodeId: string) {
    return `${this.#p}node:{${nodeId}}:alive`;
  }
  #reaper(nodeId: string) {
    return `${this.#p}node:{${nodeId}}:reaper`;
  }
}
