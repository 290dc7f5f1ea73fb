import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

/**
 * A Lua script run by EVALSHA, falling back to EVAL when the server does not know it (first use,
 * or after a Redis restart or SCRIPT FLUSH). Every script touches only the keys it is given, so on
 * a Cluster the caller must pass keys of one slot (the `{roomId}` hash tag sees to that).
 */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isReplyError(err, 'NOSCRIPT')) throw err;
      return client.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Join: atomic check-and-add. KEYS[1] members hash, KEYS[2] (optional) the `rooms` index.
 * ARGV: sessionId, participant JSON, maxParticipants, roomId.
 * Returns nil when full, else every member's JSON (a re-join replaces and does not count twice).
 */
export const JOIN = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return false
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[4]) end
return redis.call('HVALS', KEYS[1])
`);

/**
 * Leave: HGET + HDEL. KEYS as for JOIN; ARGV: sessionId, roomId.
 * Returns nil when not a member, else {removed JSON, members left}. Redis deletes the hash itself
 * when its last field goes; the index entry goes with it.
 */
export const LEAVE = new LuaScript(`
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local left = redis.call('HLEN', KEYS[1])
if left == 0 and KEYS[2] then redis.call('SREM', KEYS[2], ARGV[2]) end
return {entry, left}
`);

/**
 * Decodes a stored HeldLock, or nil when it is not one (corrupt values count as no lock, so an
 * acquire overwrites them). Mirrors the HeldLock schema in records.ts.
 */
const DECODE_LOCK = `
local function decode_lock(raw)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' or type(v.fence) ~= 'number' or type(v.sessionId) ~= 'string'
    or type(v.userId) ~= 'string' or type(v.name) ~= 'string' or type(v.priority) ~= 'number'
    or type(v.since) ~= 'number' then
    return nil
  end
  return v
end
`;

/**
 * Acquire: SET-NX-PX semantics plus fencing and takeover. KEYS[1] speaker, KEYS[2] fence counter.
 * ARGV: holder JSON (an object without `fence`), ttl ms, replaceFence or '', fence counter ttl ms.
 * Returns {1, fence} when granted, {0, current lock JSON} when denied.
 *
 * A fresh fence counter (first use, expired, or Redis lost its data) is seeded from the Redis clock
 * in µs rather than 1, so fences stay above any a node may still hold from before: otherwise a
 * stale holder with fence 1 could renew or release a new holder's fence-1 lock after a data loss.
 * (µs, not ms: a room may see several grants within one ms. About 1.8e15 now, exact in a double
 * and in a JS number until the year 2255.)
 */
export const ACQUIRE = new LuaScript(`${DECODE_LOCK}
local current = redis.call('GET', KEYS[1])
local lock = decode_lock(current)
if lock and not (ARGV[3] ~= '' and lock.fence == tonumber(ARGV[3])) then
  return {0, current}
end
local fence = redis.call('INCR', KEYS[2])
if fence == 1 then
  local t = redis.call('TIME')
  local seed = tonumber(t[1]) * 1000000 + tonumber(t[2])
  fence = redis.call('INCRBY', KEYS[2], string.format('%.0f', seed - 1))
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local value = '{"fence":' .. string.format('%.0f', fence) .. ',' .. string.sub(ARGV[1], 2)
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, fence}
`);

/** Renew: compare fence, then PEXPIRE. KEYS[1] speaker; ARGV: fence, ttl ms. Returns 1 or 0. */
export const RENEW = new LuaScript(`${DECODE_LOCK}
local lock = decode_lock(redis.call('GET', KEYS[1]))
if not lock or lock.fence ~= tonumber(ARGV[1]) then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`);

/** Release: compare-and-delete. KEYS[1] speaker; ARGV: fence. Returns 1 or 0. */
export const RELEASE = new LuaScript(`${DECODE_LOCK}
local lock = decode_lock(redis.call('GET', KEYS[1]))
if not lock or lock.fence ~= tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
`);

/** An error reply from the server (as opposed to a connection failure), optionally with a given prefix. */
export function isReplyError(err: unknown, prefix = ''): err is Error {
  return err instanceof Error && err.name === 'ReplyError' && err.message.startsWith(prefix);
}

/**
 * A step on a 1:1 call's record (a hash: callerId, callerSession, rung, callee, busy:<session>,
 * ended). KEYS[1] the call hash. ARGV: op (ring|answer|busy|end), ttlMs, then per op: ring →
 * callerId, callerSession, rung (JSON array); answer and busy → session. An ended record is
 * returned as it is: no step changes it or its expiry.
 * Returns the hash's field/value pairs after the step (empty when there is no record).
 */
export const CALL_STEP = new LuaScript(`
local op = ARGV[1]
if op == 'ring' then
  if redis.call('HSETNX', KEYS[1], 'callerSession', ARGV[4]) == 1 then
    redis.call('HSET', KEYS[1], 'callerId', ARGV[3], 'rung', ARGV[5])
  elseif redis.call('HEXISTS', KEYS[1], 'ended') == 1 then
    return redis.call('HGETALL', KEYS[1])
  end
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
elseif redis.call('HEXISTS', KEYS[1], 'ended') == 1 then
  return redis.call('HGETALL', KEYS[1])
elseif op == 'end' then
  redis.call('HSET', KEYS[1], 'ended', '1')
elseif op == 'answer' then
  redis.call('HSETNX', KEYS[1], 'callee', ARGV[3])
elseif op == 'busy' then
  if redis.call('HEXISTS', KEYS[1], 'callee') == 0 then
    redis.call('HSET', KEYS[1], 'busy:' .. ARGV[3], '1')
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
`);
