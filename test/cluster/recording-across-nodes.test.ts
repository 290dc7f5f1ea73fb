import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recording } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TestClient } from '../helpers/client.js';
import { expectReply } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startNodeProcess, type NodeProcess } from '../helpers/node-process.js';
import { decodePcm, probe, rms } from '../helpers/ogg-audio.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { TEST_SECRET } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { WebRtcPeer } from '../helpers/webrtc-peer.js';

const issuer = new TokenIssuer({ secret: TEST_SECRET });

/*
 * Recording in a cluster: the node that owns the room's media records, whichever node the speaker
 * is connected to; the metadata is in Redis, so any node lists it (and serves the file from the
 * shared RECORDINGS_DIR). When the recording node is killed mid-burst, a survivor's sweeper
 * finalises the whole pages on disk and lists the recording as partial: never a corrupt file.
 */
describe('recording across nodes', () => {
  let redis: TestRedis;
  let dir: string;
  let n1: NodeProcess;
  let n2: NodeProcess;
  const clients: TestClient[] = [];
  const peers: WebRtcPeer[] = [];
  let token: string;
  const on = async (node: NodeProcess, sub: string) => {
    const c = await TestClient.connect(node.wsUrl, await issuer.issue({ sub, name: `Name ${sub}` }));
    clients.push(c);
    return c;
  };
  const list = async (node: NodeProcess) => {
    const res = await fetch(`${node.httpUrl}/api/rooms/dispatch/recordings`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return ((await res.json()) as { recordings: Recording[] }).recordings;
  };
  const download = async (node: NodeProcess, rec: Recording) => {
    const res = await fetch(`${node.httpUrl}/api/recordings/${rec.id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    const path = join(dir, `dl-${rec.id}.ogg`);
    await writeFile(path, Buffer.from(await res.arrayBuffer()));
    return path;
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    redis = await startRedis();
    dir = await mkdtemp(join(tmpdir(), 'parley-rec-cluster-'));
    const manifest = join(dir, 'station.json');
    await writeFile(
      manifest,
      JSON.stringify({
        allowAdHocRooms: false,
        channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 10, record: true }],
      }),
    );
    const common = {
      REDIS_URL: redis.url,
      MEDIASOUP_WORKERS: '1',
      NODE_TTL_MS: '1000',
      RESUME_GRACE_MS: '1000',
      PTT_LOCK_TTL_MS: '1500',
      PARLEY_MANIFEST: manifest,
      RECORDINGS_DIR: join(dir, 'store'),
      RECORDING_SWEEP_INTERVAL_MS: '300',
    };
    [n1, n2] = await Promise.all([
      startNodeProcess({ ...common, NODE_ID: 'r1', RTC_MIN_PORT: '44000', RTC_MAX_PORT: '44999' }),
      startNodeProcess({ ...common, NODE_ID: 'r2', RTC_MIN_PORT: '45000', RTC_MAX_PORT: '45999' }),
    ]);
    token = await issuer.issue({ sub: 'auditor' });
  }, 30_000);
  afterAll(async () => {
    for (const p of peers) p.close();
    for (const c of clients) c.ws.terminate();
    await Promise.all([n1?.stop(), n2?.stop()]);
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the media owner records a speaker connected to another node; every node lists and serves it; a kill -9 mid-burst leaves a finalised partial recording', async () => {
    // The listener on node 1 opens the room's media first: node 1 owns it.
    const owner = await on(n1, 'owner-listener');
    expectReply(await owner.request('room:join', { roomId: 'dispatch' }), 'room:state');
    const ownerPeer = await WebRtcPeer.open(owner, 'dispatch');
    peers.push(ownerPeer);
    // The speaker and a second listener are on node 2; the speaker's transport is on node 1.
    const speaker = await on(n2, 'speaker');
    const far = await on(n2, 'far-listener');
    for (const c of [speaker, far])
      expectReply(await c.request('room:join', { roomId: 'dispatch' }), 'room:state');
    const ps = await WebRtcPeer.open(speaker, 'dispatch');
    peers.push(ps);
    await ps.produceTone();
    await ownerPeer.consumeFloor();
    await waitUntil(
      () => ps.sendPc?.connectionState === 'connected' && ownerPeer.recvPc?.connectionState === 'connected',
      `speaker and listener connected (${ps.states()}, ${ownerPeer.states()})`,
      10_000,
    );
    const p0 = await ownerPeer.packetsReceived();

    expectReply(await speaker.request('ptt:start', { roomId: 'dispatch' }), 'ptt:granted');
    await sleep(1_000); // the burst
    expectReply(await speaker.request('ptt:stop', { roomId: 'dispatch' }), 'ptt:stopped');
    // Members on both nodes hear of it once.
    const [atOwner, atFar] = await Promise.all([
      owner.next('ptt:recording', 10_000),
      far.next('ptt:recording', 10_000),
    ]);
    expect(atFar.payload).toEqual(atOwner.payload);
    const first = atOwner.payload;
    expect(first.speaker).toEqual({ userId: 'speaker', name: 'Name speaker' });
    // It holds what the listener heard of the burst (20 ms packets), ±200 ms.
    const heardMs = ((await ownerPeer.packetsReceived()) - p0) * 20;
    expect(heardMs).toBeGreaterThan(300);
    expect(Math.abs(first.durationMs - heardMs)).toBeLessThanOrEqual(200);
    expect(await list(n2)).toEqual([first]);
    expect(await list(n1)).toEqual([first]);
    const path = await download(n2, first);
    expect((await probe(path)).codec).toBe('opus');

    // Again, and the recording node dies 1.2 s into the burst.
    expectReply(await speaker.request('ptt:start', { roomId: 'dispatch' }), 'ptt:granted');
    const grantedAt = performance.now();
    await sleep(1_200); // two whole Ogg pages (0.5 s each) are on disk by now
    await n1.kill9();
    // What was spoken before the kill bounds what can be on disk (measured, not assumed: a busy
    // machine stretches the sleep).
    const spokenMs = performance.now() - grantedAt;
    // Node 2 sees node 1's heartbeat expire (NODE_TTL_MS) and its sweeper finalises the burst.
    let partial: Recording | undefined;
    await waitUntil(
      async () => {
        partial = (await list(n2)).find((r) => r.partial);
        return partial !== undefined;
      },
      'the survivor to finalise the dead node’s burst',
      15_000,
      200,
    );
    expect(partial?.speaker.userId).toBe('speaker');
    expect(partial!.durationMs).toBeGreaterThanOrEqual(500);
    expect(partial!.durationMs).toBeLessThanOrEqual(spokenMs + 200);
    const cut = await download(n2, partial!);
    const info = await probe(cut);
    expect(info.codec).toBe('opus');
    expect(Math.abs(info.durationMs - partial!.durationMs)).toBeLessThanOrEqual(50);
    // It decodes cleanly (ffmpeg -xerror) to the tone.
    expect(rms(await decodePcm(cut))).toBeGreaterThan(500);
    expect((await list(n2)).map((r) => r.id)).toEqual([partial!.id, first.id]);
  }, 60_000);
});
