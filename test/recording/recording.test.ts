import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recording, ServerMessageOf } from '../../src/protocol/index.js';
import { connectAs, type TestClient } from '../helpers/client.js';
import { expectReply } from '../helpers/media.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { decodePcm, probe, rms, toneFrequency } from '../helpers/ogg-audio.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { WebRtcPeer } from '../helpers/webrtc-peer.js';
import { indexOfWrite, tapWrites } from '../helpers/wire-tap.js';
import { OggOpusWriter } from '../../src/server/recording/ogg-opus-writer.js';
import { gapPacket } from '../../src/server/recording/opus-packets.js';

/*
 * PTT recording with real media: wrtc speakers send a 440 Hz tone through a real mediasoup worker;
 * the server records each talk burst to Ogg Opus; ffprobe and ffmpeg check the files fetched
 * through the HTTP API. The talk bursts are held on the wall clock (real audio has to flow), but
 * nothing here asserts speed: durations are checked as file content (±200 ms).
 */

const SECRET = 'webhook-secret-0123456789';
const manifest = {
  allowAdHocRooms: false,
  channels: [
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 10, record: true },
    { id: 'quiet', name: 'Quiet', mode: 'ptt', maxParticipants: 10 },
    { id: 'other', name: 'Other', mode: 'ptt', maxParticipants: 10, record: true },
  ],
};

describe('PTT recording with real media', () => {
  let srv: TestServer;
  let dir: string;
  let hooks: WebhookReceiver;
  const clients: TestClient[] = [];
  const peers: WebRtcPeer[] = [];
  let speaker: TestClient;
  let boss: TestClient;
  let listener: TestClient;
  let listenerPeer: WebRtcPeer;
  let listenerToken: string;
  let quietSpeaker: TestClient;

  async function speakerWithTone(sub: string, roomId: string, claims: Record<string, unknown> = {}) {
    const c = await connectAs(srv, clients, sub, claims);
    expectReply(await c.request('room:join', { roomId }), 'room:state');
    const p = await WebRtcPeer.open(c, roomId);
    peers.push(p);
    await p.produceTone();
    await waitUntil(
      () => p.sendPc?.connectionState === 'connected',
      `${sub} connected (${p.states()})`,
      10_000,
    );
    return c;
  }

  async function talk(c: TestClient, roomId: string, ms: number): Promise<void> {
    expectReply(await c.request('ptt:start', { roomId }), 'ptt:granted');
    await sleep(ms); // the talk burst: real audio flows meanwhile
    expectReply(await c.request('ptt:stop', { roomId }), 'ptt:stopped');
  }

  function get(path: string, token?: string, headers: Record<string, string> = {}) {
    return fetch(`${srv.httpUrl}${path}`, {
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
  }

  async function download(rec: Recording): Promise<string> {
    const res = await get(`/api/recordings/${rec.id}`, listenerToken);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/ogg');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(rec.bytes);
    const path = join(dir, `dl-${rec.id}.ogg`);
    await writeFile(path, body);
    return path;
  }

  const recordingMsg = (m: { type: string }) => m.type === 'ptt:recording';

  /**
   * Packets the SFU has sent the listener on the floor (the server's consumer counters): what the
   * room heard. Each is 20 ms of Opus, so a burst's recording must hold as much audio as the
   * listeners heard of it, however fast this loaded machine fed the speaker's tone.
   */
  async function floorPackets(): Promise<number> {
    const id = listenerPeer.consumed?.consumerId ?? '';
    const consumer = srv.server.internalsForTesting.media.consumerForTesting(id);
    if (!consumer) throw new Error('the listener has no floor consumer');
    const stats = await consumer.getStats();
    return stats.reduce((n, s) => n + (s.type === 'outbound-rtp' ? s.packetCount : 0), 0);
  }

  beforeAll(async () => {
    assertLoopbackOnly();
    dir = await mkdtemp(join(tmpdir(), 'parley-rec-'));
    hooks = await WebhookReceiver.start(SECRET);
    srv = await startServer(
      {
        MEDIASOUP_WORKERS: '1',
        RECORDINGS_DIR: join(dir, 'store'),
        WEBHOOK_URLS: hooks.url,
        WEBHOOK_SECRET: SECRET,
      },
      manifest,
    );
    listenerToken = await srv.token({ sub: 'listener', name: 'Listener' });
    listener = await connectAs(srv, clients, 'listener', { name: 'Listener' });
    expectReply(await listener.request('room:join', { roomId: 'dispatch' }), 'room:state');
    expectReply(await listener.request('room:join', { roomId: 'quiet' }), 'room:state');
    listenerPeer = await WebRtcPeer.open(listener, 'dispatch');
    peers.push(listenerPeer);
    await listenerPeer.consumeFloor();
    speaker = await speakerWithTone('alice', 'dispatch', { name: 'Alice' });
    boss = await speakerWithTone('boss', 'dispatch', { name: 'Boss', pttPriority: 9 });
    quietSpeaker = await speakerWithTone('carol', 'quiet');
  }, 60_000);

  afterAll(async () => {
    for (const p of peers) p.close();
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
    await hooks?.close();
    await rm(dir, { recursive: true, force: true });
  });

  let bursts: ServerMessageOf<'ptt:recording'>[] = [];

  it('a 2 s and a 1 s burst are two Ogg Opus recordings of the right length, with the tone in them', async () => {
    const p0 = await floorPackets();
    const log = tapWrites(srv);
    await talk(speaker, 'dispatch', 2_000);
    // Listeners (and the speaker) are told of each one.
    bursts = [await listener.next('ptt:recording', 10_000)];
    // ...after the speaker has the reply to the ptt:stop that ended the burst (SPEC §9).
    const stopped = indexOfWrite(log, { userId: 'alice', type: 'ptt:stopped' });
    expect(stopped, JSON.stringify(log)).toBeGreaterThanOrEqual(0);
    expect(stopped, JSON.stringify(log)).toBeLessThan(indexOfWrite(log, { type: 'ptt:recording' }));
    // ...and after the room heard the floor is free (the second change the listener was written).
    const changes = log.flatMap((w, i) =>
      w.userId === 'listener' && w.type === 'ptt:speaker-changed' ? [i] : [],
    );
    expect(changes, JSON.stringify(log)).toHaveLength(2);
    expect(changes[1]).toBeLessThan(indexOfWrite(log, { type: 'ptt:recording' }));
    const p1 = await floorPackets();
    await talk(speaker, 'dispatch', 1_000);
    bursts.push(await listener.next('ptt:recording', 10_000));
    const p2 = await floorPackets();
    await speaker.next('ptt:recording', 5_000);
    await speaker.next('ptt:recording', 5_000);
    const [first, second] = bursts.map((m) => m.payload);
    expect(first).toMatchObject({ roomId: 'dispatch', speaker: { userId: 'alice', name: 'Alice' } });
    expect(second.speaker.userId).toBe('alice');
    expect(second.startedAt).toBeGreaterThan(first.startedAt);
    // Each recording holds what the room heard of its burst (±200 ms), and the 2 s one is longer.
    const heard = [(p1 - p0) * 20, (p2 - p1) * 20];
    expect(heard[0]).toBeGreaterThan(heard[1]);
    expect(Math.abs(first.durationMs - heard[0])).toBeLessThanOrEqual(200);
    expect(Math.abs(second.durationMs - heard[1])).toBeLessThanOrEqual(200);

    const list = await get('/api/rooms/dispatch/recordings', listenerToken);
    expect(list.status).toBe(200);
    const body = (await list.json()) as { recordings: Recording[] };
    expect(body.recordings).toEqual([second, first]); // newest first

    // A silent reference written by the same writer: concealed frames only.
    const silentPath = join(dir, 'silent.ogg');
    const silent = new OggOpusWriter(silentPath, { packetsPerPage: 25, maxGapSamples: 48_000 * 10 });
    silent.push(0, gapPacket(0xf8));
    silent.push(48_000, gapPacket(0xf8));
    silent.close();
    const silentRms = rms(await decodePcm(silentPath));

    for (const [rec, ms] of [
      [first, heard[0]],
      [second, heard[1]],
    ] as const) {
      const path = await download(rec);
      const info = await probe(path);
      expect(info.codec).toBe('opus');
      expect(Math.abs(info.durationMs - ms)).toBeLessThanOrEqual(200);
      const pcm = await decodePcm(path);
      expect(rms(pcm)).toBeGreaterThan(Math.max(500, silentRms * 10));
      const hz = toneFrequency(pcm.subarray(4_800)); // skip the first 100 ms (encoder ramp-up)
      expect(hz).toBeGreaterThan(400);
      expect(hz).toBeLessThan(480);
    }

    // The webhook went out once per recording, with the same metadata.
    const events = await hooks.waitFor((e) => e.event === 'recording.ready', 'recording.ready', 2);
    expect(events.map((e) => (e as { recording: Recording }).recording)).toEqual([first, second]);
  }, 60_000);

  it('serves byte ranges (206) and refuses bad ones (416) without breaking the next request', async () => {
    const rec = bursts[0].payload;
    const full = Buffer.from(await (await get(`/api/recordings/${rec.id}`, listenerToken)).arrayBuffer());
    const head = await get(`/api/recordings/${rec.id}`, listenerToken, { range: 'bytes=0-99' });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe(`bytes 0-99/${rec.bytes}`);
    expect(Buffer.from(await head.arrayBuffer())).toEqual(full.subarray(0, 100));
    const tail = await get(`/api/recordings/${rec.id}`, listenerToken, { range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(full.subarray(full.length - 10));
    const open = await get(`/api/recordings/${rec.id}`, listenerToken, { range: `bytes=${rec.bytes - 5}-` });
    expect(open.status).toBe(206);
    expect(Buffer.from(await open.arrayBuffer())).toEqual(full.subarray(full.length - 5));
    for (const range of [`bytes=${rec.bytes}-`, 'bytes=abc', 'bytes=10-5', 'bytes=-0', 'bytes=0-1,5-6']) {
      const res = await get(`/api/recordings/${rec.id}`, listenerToken, { range });
      expect(res.status, range).toBe(416);
      expect(res.headers.get('content-range')).toBe(`bytes */${rec.bytes}`);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RANGE_NOT_SATISFIABLE');
    }
    expect((await get(`/api/recordings/${rec.id}`, listenerToken)).status).toBe(200);
  });

  it('401 without a valid token, 403 for a room the token does not allow or without replay, 404 for an unknown id', async () => {
    const rec = bursts[0].payload;
    const err = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
    for (const path of ['/api/rooms/dispatch/recordings', `/api/recordings/${rec.id}`]) {
      const none = await get(path);
      expect(none.status).toBe(401);
      expect(await err(none)).toBe('UNAUTHORIZED');
      const bad = await get(path, 'not-a-jwt');
      expect(bad.status).toBe(401);
      const elsewhere = await get(path, await srv.token({ sub: 'x', rooms: ['other'] }));
      expect(elsewhere.status).toBe(403);
      expect(await err(elsewhere)).toBe('FORBIDDEN');
      const noReplay = await get(path, await srv.token({ sub: 'y', canReplay: false }));
      expect(noReplay.status).toBe(403);
    }
    const unknown = await get('/api/recordings/no-such-recording', listenerToken);
    expect(unknown.status).toBe(404);
    expect(await err(unknown)).toBe('RECORDING_NOT_FOUND');
    expect((await get('/api/recordings/%E0%A4%A', listenerToken)).status).toBe(404);
    // A room the token allows but nobody recorded in: an empty list.
    const other = await get('/api/rooms/other/recordings', listenerToken);
    expect(await other.json()).toEqual({ recordings: [] });
    // Bad query parameters.
    expect((await get('/api/rooms/dispatch/recordings?limit=0', listenerToken)).status).toBe(400);
    expect((await get('/api/rooms/dispatch/recordings?since=soon', listenerToken)).status).toBe(400);
    // And the API still answers.
    const ok = await get('/api/rooms/dispatch/recordings?limit=1', listenerToken);
    expect(((await ok.json()) as { recordings: Recording[] }).recordings).toHaveLength(1);
  });

  it('`since` and `limit` page the list', async () => {
    const [first, second] = bursts.map((m) => m.payload);
    const since = await get(`/api/rooms/dispatch/recordings?since=${second.startedAt}`, listenerToken);
    expect(((await since.json()) as { recordings: Recording[] }).recordings).toEqual([second]);
    const one = await get('/api/rooms/dispatch/recordings?limit=1', listenerToken);
    expect(((await one.json()) as { recordings: Recording[] }).recordings).toEqual([second]);
    expect(first.startedAt).toBeLessThan(second.startedAt);
  });

  it('pre-emption splits the burst: the pre-empted and the pre-empting speaker are two recordings', async () => {
    const p0 = await floorPackets();
    expectReply(await speaker.request('ptt:start', { roomId: 'dispatch' }), 'ptt:granted');
    await sleep(1_000); // Alice talks
    const log = tapWrites(srv);
    expectReply(await boss.request('ptt:start', { roomId: 'dispatch' }), 'ptt:granted');
    await speaker.next('ptt:revoked');
    await sleep(1_000); // the boss talks
    expectReply(await boss.request('ptt:stop', { roomId: 'dispatch' }), 'ptt:stopped');
    const a = (await listener.next('ptt:recording', 10_000)).payload;
    // Alice's burst, ended by the pre-emption, is announced after the boss's grant and the floor's
    // change (SPEC §9: the reply before any broadcast the request causes).
    const granted = indexOfWrite(log, { userId: 'boss', type: 'ptt:granted' });
    expect(granted, JSON.stringify(log)).toBeGreaterThanOrEqual(0);
    expect(granted, JSON.stringify(log)).toBeLessThan(indexOfWrite(log, { type: 'ptt:recording' }));
    expect(indexOfWrite(log, { type: 'ptt:speaker-changed' })).toBeLessThan(
      indexOfWrite(log, { type: 'ptt:recording' }),
    );
    const b = (await listener.next('ptt:recording', 10_000)).payload;
    expect(a.speaker).toEqual({ userId: 'alice', name: 'Alice' });
    expect(b.speaker).toEqual({ userId: 'boss', name: 'Boss' });
    // Together they hold what the room heard across both speakers; each has real audio.
    const heardMs = ((await floorPackets()) - p0) * 20;
    expect(Math.abs(a.durationMs + b.durationMs - heardMs)).toBeLessThanOrEqual(200);
    for (const r of [a, b]) {
      expect(r.durationMs).toBeGreaterThan(200);
      const info = await probe(await download(r));
      expect(info.codec).toBe('opus');
      expect(Math.abs(info.durationMs - r.durationMs)).toBeLessThanOrEqual(50);
    }
    expect(b.startedAt).toBeGreaterThanOrEqual(a.startedAt + a.durationMs - 200);
  }, 30_000);

  it('a channel without "record" is not recorded', async () => {
    await talk(quietSpeaker, 'quiet', 500);
    await listener.expectNothing(recordingMsg, 500);
    const res = await get('/api/rooms/quiet/recordings', listenerToken);
    expect(await res.json()).toEqual({ recordings: [] });
  }, 20_000);

  it('a speaker who disconnects mid-burst ends the burst: the recording is kept', async () => {
    expectReply(await boss.request('ptt:start', { roomId: 'dispatch' }), 'ptt:granted');
    await sleep(700); // the boss talks, then the connection drops
    boss.ws.terminate();
    const rec = (await listener.next('ptt:recording', 10_000)).payload;
    expect(rec.speaker.userId).toBe('boss');
    expect(rec.durationMs).toBeGreaterThan(300);
    const info = await probe(await download(rec));
    expect(info.codec).toBe('opus');
    // Files on disk: exactly the recordings listed (none left behind for discarded bursts).
    const listed = (
      (await (await get('/api/rooms/dispatch/recordings', listenerToken)).json()) as {
        recordings: Recording[];
      }
    ).recordings;
    expect(listed).toHaveLength(5);
    expect((await readdir(join(dir, 'store'))).sort()).toEqual(listed.map((r) => `${r.id}.ogg`).sort());
  }, 20_000);
});
