import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConferenceRoom, ParleyClient } from '../../src/client/index.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { openSdkPage, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

interface VideoPage {
  parley: ParleyClient;
  room: ConferenceRoom;
}

declare global {
  interface Window {
    vid: VideoPage;
  }
}

const manifest = {
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [{ id: 'studio', name: 'Studio', mode: 'conference', maxParticipants: 10 }],
};

async function join(b: BrowserPage, token: string): Promise<void> {
  await b.page.evaluate(async (token) => {
    const parley = await window.Parley.ParleyClient.connect({ url: location.origin, token });
    const room = await parley.joinConference('studio', { camera: true, audio: false });
    window.vid = { parley, room };
  }, token);
}

/** mediasoup-client's simulcast rids are r0, r1, r2 (lowest first); a browser may name them q, h, f. */
const layerOfRid = (rid: string) => Number(/^r(\d+)$/.exec(rid)?.[1] ?? 'qhf'.indexOf(rid));

/** What a page receives from `userId`'s track of `kind`: packets, frames decoded, frame width. */
const received = (b: BrowserPage, userId: string, kind: 'audio' | 'video') =>
  b.page.evaluate(
    async ({ userId, kind }) => {
      const who = window.vid.room.participants.find((p) => p.userId === userId);
      const t = [...(who?.tracks.values() ?? [])].find((x) => x.kind === kind);
      const s = t ? await window.vid.room.trackStats(t.producerId) : null;
      return { packets: s?.packetsReceived ?? 0, frames: s?.framesDecoded ?? 0, width: s?.frameWidth ?? 0 };
    },
    { userId, kind },
  );

describe('a video conference of three Chromium pages', () => {
  let srv: E2eServer;
  let pages: Record<'alice' | 'bob' | 'carol', BrowserPage>;
  const everyone = ['alice', 'bob', 'carol'] as const;

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest });
    const [alice, bob, carol] = await Promise.all([openSdkPage(srv), openSdkPage(srv), openSdkPage(srv)]);
    pages = { alice, bob, carol };
    for (const name of everyone) await join(pages[name], await srv.token(name, name.toUpperCase()));
  });

  afterAll(async () => {
    const errors = Object.values(pages ?? {}).flatMap((b) => b.errors);
    await Promise.all(Object.values(pages ?? {}).map((b) => b.close()));
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('everyone decodes the other two cameras and receives both other voices', async () => {
    for (const me of everyone) {
      for (const other of everyone) {
        if (other === me) continue;
        const page = pages[me];
        const base = await received(page, other, 'video');
        const baseAudio = await received(page, other, 'audio');
        await waitUntil(
          async () => (await received(page, other, 'video')).frames > base.frames + 10,
          `${me} decodes ${other}'s camera`,
          15_000,
          100,
        );
        await waitUntil(
          async () => (await received(page, other, 'audio')).packets > baseAudio.packets + 20,
          `${me} receives ${other}'s voice`,
          15_000,
          100,
        );
      }
    }
  });

  it('the active speaker follows whoever talks (the others muted)', async () => {
    const { alice, bob, carol } = pages;
    const speakerAt = (b: BrowserPage) =>
      b.page.evaluate(() => window.vid.room.activeSpeaker?.participant.userId ?? null);
    await bob.page.evaluate(() => window.vid.room.setMicrophoneEnabled(false));
    await carol.page.evaluate(() => window.vid.room.setMicrophoneEnabled(false));
    for (const b of [alice, bob, carol]) {
      await waitUntil(
        async () => (await speakerAt(b)) === 'alice',
        'Alice is the active speaker',
        15_000,
        100,
      );
    }
    await alice.page.evaluate(() => window.vid.room.setMicrophoneEnabled(false));
    await bob.page.evaluate(() => window.vid.room.setMicrophoneEnabled(true));
    for (const b of [alice, bob, carol]) {
      await waitUntil(async () => (await speakerAt(b)) === 'bob', 'Bob is the active speaker', 15_000, 100);
    }
    await alice.page.evaluate(() => window.vid.room.setMicrophoneEnabled(true));
    await carol.page.evaluate(() => window.vid.room.setMicrophoneEnabled(true));
  });

  it('a small tile gets a lower simulcast layer than a large one', async () => {
    const { bob, carol } = pages;
    const producerOf = (b: BrowserPage) =>
      b.page.evaluate(() => {
        const who = window.vid.room.participants.find((p) => p.userId === 'alice');
        return [...(who?.tracks.values() ?? [])].find((t) => t.source === 'camera')?.producerId ?? '';
      });
    const small = await bob.page.evaluate(
      async (id) => window.vid.room.setRenderedSize(id, 160, 90),
      await producerOf(bob),
    );
    const large = await carol.page.evaluate(
      async (id) => window.vid.room.setRenderedSize(id, 1280, 720),
      await producerOf(carol),
    );
    expect(small).toBe(0);
    expect(large).toBe(2);
    // What arrives depends on what Alice's encoder sends: on a busy machine Chromium stops sending
    // the upper layers (CPU adaptation), and then both tiles get the one layer left. So each tile
    // must get the widest layer Alice sends at or below the layer it was granted; with two or more
    // widths sent, the large tile gets wider frames than the small one.
    const sentWidths = async () =>
      (await pages.alice.page.evaluate(async () => window.vid.room.sendStats('camera')))
        .filter((l) => l.rid !== null && l.frameWidth > 0)
        .map((l) => ({ layer: layerOfRid(l.rid as string), frameWidth: l.frameWidth }));
    const widestAtOrBelow = (layers: { layer: number; frameWidth: number }[], layer: number) =>
      Math.max(0, ...layers.filter((l) => l.layer <= layer).map((l) => l.frameWidth));
    let seen = '';
    await waitUntil(
      async () => {
        const [sent, b, c] = await Promise.all([
          sentWidths(),
          received(bob, 'alice', 'video'),
          received(carol, 'alice', 'video'),
        ]);
        const want = [widestAtOrBelow(sent, small ?? 0), widestAtOrBelow(sent, large ?? 0)];
        seen = JSON.stringify({ sent, want, got: [b.width, c.width] });
        return want[0] > 0 && b.width === want[0] && c.width === want[1];
      },
      'each tile to receive the widest layer Alice sends at or below its own',
      20_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${seen}`);
    });
    if (new Set((await sentWidths()).map((l) => l.frameWidth)).size > 1) {
      const [b, c] = await Promise.all([received(bob, 'alice', 'video'), received(carol, 'alice', 'video')]);
      expect(c.width).toBeGreaterThan(b.width);
    }
  });

  it('a camera turned off stops for the others', async () => {
    const { alice, bob, carol } = pages;
    await alice.page.evaluate(() => window.vid.room.setCameraEnabled(false));
    for (const b of [bob, carol]) {
      await waitUntil(
        async () => (await received(b, 'alice', 'video')).packets === 0,
        'Alice’s camera gone',
        10_000,
        100,
      );
    }
  });
});
