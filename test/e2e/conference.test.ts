import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConferenceRoom, ParleyClient } from '../../src/client/index.js';
import { dropFromServer } from '../client/helpers.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { openSdkPage, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

interface ConfPage {
  parley: ParleyClient;
  room: ConferenceRoom;
  /** `<event> <userId> <kind>/<source>` in arrival order. */
  events: string[];
}

declare global {
  interface Window {
    conf: ConfPage;
  }
}

const manifest = {
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [{ id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 10 }],
};

/** Connects the SDK in the page and joins the lobby with microphone and camera on. */
async function join(b: BrowserPage, token: string): Promise<void> {
  await b.page.evaluate(async (token) => {
    const parley = await window.Parley.ParleyClient.connect({ url: location.origin, token });
    // A canvas stands in for the screen picker, which a headless browser cannot show.
    const screen = () => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 180;
      const ctx = canvas.getContext('2d');
      setInterval(() => ctx?.fillRect(Math.random() * 300, Math.random() * 160, 20, 20), 40);
      return Promise.resolve(canvas.captureStream(25));
    };
    const room = await parley.joinConference('lobby', {
      camera: true,
      audio: false,
      getDisplayMedia: screen,
    });
    const events: string[] = [];
    const note = (what: string) => (t: { kind: string; source: string | null }, p: { userId: string }) =>
      events.push(`${what} ${p.userId} ${t.kind}/${t.source}`);
    room.on('trackSubscribed', note('subscribed'));
    room.on('trackUnsubscribed', note('unsubscribed'));
    room.on('trackMuted', note('muted'));
    room.on('trackUnmuted', note('unmuted'));
    room.on('participantLeft', (p, reason) => events.push(`left ${p.userId} ${reason}`));
    window.conf = { parley, room, events };
  }, token);
}

/** What a page receives from `userId`: kind/source → muted, sorted. */
const tracksFrom = (b: BrowserPage, userId: string) =>
  b.page.evaluate((userId) => {
    const who = window.conf.room.participants.find((p) => p.userId === userId);
    return [...(who?.tracks.values() ?? [])]
      .map((t) => `${t.kind}/${t.source}${t.muted ? ' muted' : ''}`)
      .sort();
  }, userId);

const packetsFrom = (b: BrowserPage, userId: string, kind: 'audio' | 'video') =>
  b.page.evaluate(
    async ({ userId, kind }) => {
      const who = window.conf.room.participants.find((p) => p.userId === userId);
      const track = [...(who?.tracks.values() ?? [])].find((t) => t.kind === kind);
      return track ? ((await window.conf.room.trackStats(track.producerId))?.packetsReceived ?? 0) : 0;
    },
    { userId, kind },
  );

describe('conference room between two Chromium pages (SDK ConferenceRoom)', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest });
    [alice, bob] = await Promise.all([openSdkPage(srv), openSdkPage(srv)]);
    await join(alice, await srv.token('alice', 'Alice'));
    await join(bob, await srv.token('bob', 'Bob'));
  });

  afterAll(async () => {
    const errors = [...(alice?.errors ?? []), ...(bob?.errors ?? [])];
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('each subscribes to the other’s microphone and camera, and media flows both ways', async () => {
    for (const [page, other] of [
      [alice, 'bob'],
      [bob, 'alice'],
    ] as const) {
      await waitUntil(
        async () => (await tracksFrom(page, other)).length === 2,
        `${other}'s tracks subscribed`,
        10_000,
        50,
      );
      expect(await tracksFrom(page, other)).toEqual(['audio/microphone', 'video/camera']);
    }
    const before = await Promise.all([
      packetsFrom(bob, 'alice', 'audio'),
      packetsFrom(bob, 'alice', 'video'),
    ]);
    await waitUntil(
      async () =>
        (await packetsFrom(bob, 'alice', 'audio')) > before[0] + 20 &&
        (await packetsFrom(bob, 'alice', 'video')) > before[1] + 20,
      'Bob receives Alice’s audio and video',
      10_000,
      100,
    );
    // The video decodes: a <video> showing Alice's camera gets real frames.
    const size = await bob.page.evaluate(async () => {
      const who = window.conf.room.participants.find((p) => p.userId === 'alice');
      const cam = [...(who?.tracks.values() ?? [])].find((t) => t.source === 'camera');
      const video = document.createElement('video');
      video.muted = true;
      video.srcObject = new MediaStream(cam ? [cam.track] : []);
      document.body.append(video);
      await video.play();
      for (let i = 0; i < 100 && video.videoWidth === 0; i++) await new Promise((r) => setTimeout(r, 50));
      return { width: video.videoWidth, height: video.videoHeight };
    });
    expect(size.width).toBeGreaterThan(0);
    expect(size.height).toBeGreaterThan(0);
  });

  it('mute pauses the microphone on the server and the other side is told; unmute resumes it', async () => {
    await alice.page.evaluate(() => window.conf.room.setMicrophoneEnabled(false));
    expect(await alice.page.evaluate(() => window.conf.room.localState('microphone'))).toBe('muted');
    await bob.page.waitForFunction(() => window.conf.events.includes('muted alice audio/microphone'));
    expect(await tracksFrom(bob, 'alice')).toEqual(['audio/microphone muted', 'video/camera']);

    await alice.page.evaluate(() => window.conf.room.setMicrophoneEnabled(true));
    await bob.page.waitForFunction(() => window.conf.events.includes('unmuted alice audio/microphone'));
    const base = await packetsFrom(bob, 'alice', 'audio');
    await waitUntil(
      async () => (await packetsFrom(bob, 'alice', 'audio')) > base + 20,
      'audio again',
      10_000,
      100,
    );
  });

  it('camera off unpublishes it and turns the device off; a screen share appears as its own track', async () => {
    await alice.page.evaluate(() => window.conf.room.setCameraEnabled(false));
    expect(await alice.page.evaluate(() => window.conf.room.localTrack('camera'))).toBeNull();
    await bob.page.waitForFunction(() => window.conf.events.includes('unsubscribed alice video/camera'));
    expect(await tracksFrom(bob, 'alice')).toEqual(['audio/microphone']);

    await alice.page.evaluate(() => window.conf.room.setScreenShareEnabled(true));
    await bob.page.waitForFunction(() => window.conf.events.includes('subscribed alice video/screen'));
    expect(await tracksFrom(bob, 'alice')).toEqual(['audio/microphone', 'video/screen']);
    const base = await packetsFrom(bob, 'alice', 'video');
    await waitUntil(
      async () => (await packetsFrom(bob, 'alice', 'video')) > base + 10,
      'screen video',
      10_000,
      100,
    );
    // The browser's own "Stop sharing" ends the track: the share is unpublished.
    await alice.page.evaluate(() => window.conf.room.localTrack('screen')?.stop());
    await alice.page.evaluate(() => window.conf.room.localTrack('screen')?.dispatchEvent(new Event('ended')));
    await bob.page.waitForFunction(() => window.conf.events.includes('unsubscribed alice video/screen'));
    expect(await alice.page.evaluate(() => window.conf.room.localState('screen'))).toBe('off');
  });

  it('a member who leaves is gone with every track, on the other side', async () => {
    await bob.page.evaluate(() => window.conf.room.leave());
    await alice.page.waitForFunction(() => window.conf.events.includes('left bob left'));
    const events = await alice.page.evaluate(() => window.conf.events.filter((e) => e.includes(' bob ')));
    expect(events).toEqual(
      expect.arrayContaining(['unsubscribed bob audio/microphone', 'unsubscribed bob video/camera']),
    );
    expect(await alice.page.evaluate(() => window.conf.room.participants.map((p) => p.userId))).toEqual([
      'alice',
    ]);
  });
});

describe('conference room media after a reconnect that cannot resume', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;

  beforeAll(async () => {
    assertLoopbackOnly();
    // No grace window: a dropped session ends at once, so the SDK re-joins instead of resuming.
    srv = await startE2eServer({ manifest, env: { RESUME_GRACE_MS: '0' } });
    [alice, bob] = await Promise.all([openSdkPage(srv), openSdkPage(srv)]);
    await join(alice, await srv.token('alice', 'Alice'));
    await join(bob, await srv.token('bob', 'Bob'));
  });

  afterAll(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
  });

  it('rebuilds by itself: republishes, resubscribes, and media flows again both ways', async () => {
    await waitUntil(
      async () => (await tracksFrom(bob, 'alice')).length === 2,
      'first subscription',
      10_000,
      50,
    );
    await alice.page.evaluate(() => {
      window.conf.room.on('mediaRebuilt', () => window.conf.events.push('rebuilt'));
    });
    const sessionId = await alice.page.evaluate(() => window.conf.parley.signaling.sessionId);
    await dropFromServer({ server: srv.server }, sessionId ?? '');

    await alice.page.waitForFunction(() => window.conf.events.includes('rebuilt'), undefined, {
      timeout: 15_000,
    });
    await bob.page.waitForFunction(() => window.conf.events.includes('left alice disconnected'));
    // Bob sees Alice's tracks again (published anew), and hears and sees her.
    await waitUntil(
      async () => (await tracksFrom(bob, 'alice')).length === 2,
      'Alice republished',
      10_000,
      50,
    );
    expect(await tracksFrom(bob, 'alice')).toEqual(['audio/microphone', 'video/camera']);
    await waitUntil(
      async () => (await packetsFrom(bob, 'alice', 'audio')) > 20,
      'Bob hears Alice again',
      10_000,
      100,
    );
    // And Alice receives Bob again on her new transports.
    await waitUntil(
      async () => (await tracksFrom(alice, 'bob')).length === 2,
      'Alice resubscribed',
      10_000,
      50,
    );
    await waitUntil(
      async () => (await packetsFrom(alice, 'bob', 'video')) > 20,
      'Alice sees Bob again',
      10_000,
      100,
    );
    expect(await alice.page.evaluate(() => window.conf.room.localState('camera'))).toBe('on');
  });
});

describe('conference room media after a resume (issue 13: released at suspension)', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;

  beforeAll(async () => {
    assertLoopbackOnly();
    // The default grace window: the session is resumed, but its transports were closed when it
    // was suspended, and the server says so (media:closed {suspended}) after session:resumed.
    srv = await startE2eServer({ manifest });
    [alice, bob] = await Promise.all([openSdkPage(srv), openSdkPage(srv)]);
    await join(alice, await srv.token('alice', 'Alice'));
    await join(bob, await srv.token('bob', 'Bob'));
  });

  afterAll(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
  });

  it('resumes the same session, rebuilds its media, and media flows again both ways; nobody saw it leave', async () => {
    await waitUntil(
      async () => (await tracksFrom(bob, 'alice')).length === 2,
      'first subscription',
      10_000,
      50,
    );
    await alice.page.evaluate(() => {
      window.conf.room.on('mediaRebuilt', () => window.conf.events.push('rebuilt'));
      window.conf.parley.signaling.on('reconnected', ({ resumed }) =>
        window.conf.events.push(`reconnected resumed=${resumed}`),
      );
    });
    const aliceProducers = () =>
      bob.page.evaluate(() =>
        [...(window.conf.room.participants.find((p) => p.userId === 'alice')?.tracks.values() ?? [])]
          .map((t) => t.producerId)
          .sort(),
      );
    const before = await aliceProducers();
    const sessionId = await alice.page.evaluate(() => window.conf.parley.signaling.sessionId);
    await dropFromServer({ server: srv.server }, sessionId ?? '');

    await alice.page.waitForFunction(() => window.conf.events.includes('rebuilt'), undefined, {
      timeout: 15_000,
    });
    expect(
      await alice.page.evaluate(() => window.conf.events.filter((e) => e.startsWith('reconnected'))),
    ).toEqual(['reconnected resumed=true']);
    expect(await alice.page.evaluate(() => window.conf.parley.signaling.sessionId)).toBe(sessionId);
    // Bob receives Alice's tracks anew: other producers than before the drop (hers were closed).
    await waitUntil(
      async () => {
        const now = await aliceProducers();
        return now.length === 2 && now.every((id) => !before.includes(id));
      },
      'Alice republished',
      10_000,
      50,
    );
    await waitUntil(
      async () => (await packetsFrom(bob, 'alice', 'audio')) > 20,
      'Bob hears Alice again',
      10_000,
      100,
    );
    await waitUntil(
      async () => (await packetsFrom(alice, 'bob', 'video')) > 20,
      'Alice sees Bob again',
      10_000,
      100,
    );
    expect(await bob.page.evaluate(() => window.conf.events.filter((e) => e.startsWith('left')))).toEqual([]);
  });
});
