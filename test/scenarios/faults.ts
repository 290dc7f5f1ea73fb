import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { joinWithMedia } from '../helpers/media.js';
import type { TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { TcpProxy } from '../hardening/lib/tcp-proxy.js';

/*
 * Fault scenarios shared by test/hardening/faults.test.ts (once, behaviour only) and
 * test/stress/faults.stress.ts (repeated, with the detection and recovery time bounds). Each
 * returns what it observed, with times in ms as figures; the caller decides what to assert.
 */

/** Every count that must return to its baseline after a fault (speakers: in `pttRooms`). */
export async function serverCounts(srv: TestServer, pttRooms: string[] = []) {
  const { gateway, sessions, rooms, relay, media, pool, store } = srv.server.internalsForTesting;
  const m = media.stats();
  const speakers = await Promise.all(pttRooms.map((r) => store.currentSpeaker(r)));
  return {
    connections: gateway.connectionCount,
    sessions: sessions.size,
    rooms: await rooms.roomCount(),
    calls: relay.calls.size,
    mediaRooms: m.rooms,
    transports: m.transports,
    producers: m.producers,
    consumers: m.consumers,
    workerConsumers: pool.workers().reduce((s, w) => s + w.consumers, 0),
    speakers: speakers.filter(Boolean).length,
  };
}

/** Opens a client and returns it with its welcome (session id, resume token). */
export async function connectWithWelcome(url: string, token: string) {
  const c = new TestClient(url, [], { headers: { authorization: `Bearer ${token}` } });
  await c.opened;
  return { c, welcome: (await c.next('welcome')).payload };
}

export const isFloorFree = (m: ServerMessage) =>
  m.type === 'ptt:speaker-changed' && m.payload.speaker === null;

export interface SilentDropOutcome {
  /** The dropped client's socket still looked open to it (it was told nothing). */
  clientStillOpen: boolean;
  resumed: ServerMessage;
  /** Whether the peer heard a leave (it must not: the session was resumed). */
  peerHeardLeave: boolean;
  detectMs: number;
  floorFreeMs: number;
  serviceBackMs: number;
}

/**
 * A speaker in `roomId`, connected through a TCP proxy, vanishes without FIN or RST (the proxy
 * black-holes both ways). Waits for the server to suspend the session (its heartbeat), for the
 * peer to see the floor free, then resumes on a direct connection. `detectWithinMs` only bounds
 * the wait.
 */
export async function silentDropOfSpeaker(
  srv: TestServer,
  roomId: string,
  who: { peer: string; victim: string },
  detectWithinMs: number,
): Promise<SilentDropOutcome> {
  const proxy = await TcpProxy.start(srv.port);
  const opened: TestClient[] = [];
  try {
    const peer = await TestClient.connect(srv.wsUrl, await srv.token({ sub: who.peer }));
    opened.push(peer);
    await peer.request('room:join', { roomId });
    const { c: v, welcome } = await connectWithWelcome(
      `ws://127.0.0.1:${proxy.port}/ws`,
      await srv.token({ sub: who.victim }),
    );
    opened.push(v);
    await v.request('room:join', { roomId });
    const granted = await v.request('ptt:start', { roomId });
    if (granted.type !== 'ptt:granted') throw new Error(`no floor: ${JSON.stringify(granted)}`);
    const { sessions } = srv.server.internalsForTesting;

    const t0 = performance.now();
    proxy.blackhole();
    await waitUntil(
      () => sessions.get(welcome.sessionId)?.suspended === true,
      'suspended by the heartbeat',
      detectWithinMs,
      5,
    );
    const detectMs = performance.now() - t0;
    await peer.waitFor(isFloorFree, 3_000);
    const floorFreeMs = performance.now() - t0;
    const clientStillOpen = v.ws.readyState === v.ws.OPEN;
    const { c: v2 } = await connectWithWelcome(srv.wsUrl, await srv.token({ sub: who.victim }));
    opened.push(v2);
    const resumed = await v2.request('session:resume', { resumeToken: welcome.resumeToken });
    const serviceBackMs = performance.now() - t0;
    const peerHeardLeave = peer.received.some((m) => m.type === 'room:participant-left');
    v.ws.terminate();
    return { clientStillOpen, resumed, peerHeardLeave, detectMs, floorFreeMs, serviceBackMs };
  } finally {
    await Promise.all(opened.map((c) => c.close(1000)));
    await proxy.close();
  }
}

/** `perRoom` members in each ptt room, each with media; the first of each holds the floor. */
export async function pttRoomsWithMedia(
  srv: TestServer,
  roomIds: string[],
  perRoom: number,
  opened: TestClient[],
): Promise<Map<string, TestClient[]>> {
  const members = new Map<string, TestClient[]>();
  for (const roomId of roomIds) {
    const list: TestClient[] = [];
    for (let i = 0; i < perRoom; i++) {
      const c = await TestClient.connect(srv.wsUrl, await srv.token({ sub: `${roomId}-m${i}` }));
      opened.push(c);
      await joinWithMedia(c, roomId, { produce: true, consumeFloor: true });
      list.push(c);
    }
    const granted = await list[0].request('ptt:start', { roomId });
    if (granted.type !== 'ptt:granted') throw new Error(`no floor in ${roomId}`);
    members.set(roomId, list);
  }
  return members;
}

/** In-room relays from the first `senders` members of each room every `everyMs`; stop() ends it. */
export function relayChatter(members: Map<string, TestClient[]>, senders: number, everyMs: number) {
  let relays = 0;
  const timer = setInterval(() => {
    for (const [roomId, list] of members) {
      for (let k = 0; k < senders; k++) {
        list[k].send('ice:candidate', { roomId, to: `${roomId}-m${k + 1}`, candidate: null });
        relays++;
      }
    }
  }, everyMs);
  return { stop: () => clearInterval(timer), relays: () => relays };
}

export interface WorkerKillOutcome {
  /** Rooms whose members were told media:closed. */
  affected: string[];
  /** ms from the kill until every member of an affected room was told, and a replacement ran. */
  toldMs: number;
  replacementMs: number;
}

/**
 * SIGKILLs the worker hosting the most routers, waits until every member of its rooms is told
 * (media:closed) and their speakers revoked, and until the pool has a replacement.
 */
export async function killBusiestWorker(
  srv: TestServer,
  members: Map<string, TestClient[]>,
): Promise<WorkerKillOutcome> {
  const { pool } = srv.server.internalsForTesting;
  for (const list of members.values()) for (const c of list) c.received.length = 0;
  const routers = new Map<number, number>();
  for (const w of pool.workers()) routers.set(w.pid, (await w.worker.dump()).routerIds.length);
  const victim = pool.workers().sort((a, b) => routers.get(b.pid)! - routers.get(a.pid)!)[0];
  const told = (list: TestClient[]) => list.every((c) => c.received.some((m) => m.type === 'media:closed'));
  const revoked = (list: TestClient[]) => list[0].received.some((m) => m.type === 'ptt:revoked');
  const t0 = performance.now();
  process.kill(victim.pid, 'SIGKILL');
  // Rooms are told one by one; the set is complete once the replacement is up and every room
  // any member heard about has told all its members (and revoked its speaker).
  const hit = () =>
    [...members].filter(([, list]) => list.some((c) => c.received.some((m) => m.type === 'media:closed')));
  await waitUntil(
    () => hit().length >= 1 && hit().every(([, list]) => told(list) && revoked(list)),
    'members of the dead worker’s rooms are told',
    5_000,
    5,
  );
  const toldMs = performance.now() - t0;
  await waitUntil(
    () => pool.size === 2 && !pool.workers().some((w) => w.pid === victim.pid),
    'a replacement worker',
    5_000,
    5,
  );
  const replacementMs = performance.now() - t0;
  // The notices are sent room by room from the worker's death event, before the replacement
  // starts; by now each affected room has told all of its members.
  await waitUntil(
    () => hit().every(([, list]) => told(list) && revoked(list)),
    'every affected room told all its members',
    5_000,
    5,
  );
  return { affected: hit().map(([r]) => r), toldMs, replacementMs };
}
