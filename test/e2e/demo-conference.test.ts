import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { simulcastLayerFor } from '../../src/client/index.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { signIn } from './demo-driver.js';
import {
  openBrowser,
  ROOT,
  screenshotPath,
  startE2eServer,
  type BrowserPage,
  type E2eServer,
} from './harness.js';

const manifest = {
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [
    { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 10 },
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 10 },
  ],
};

/** Tiles with a playing video from `userId`, as the page shows them. */
const videoTilesOf = (page: Page, userId: string) =>
  page.evaluate(
    (userId) =>
      [...document.querySelectorAll<HTMLElement>(`#tiles .tile[data-user="${userId}"]`)].filter((t) => {
        const v = t.querySelector('video');
        return v !== null && v.videoWidth > 0;
      }).length,
    userId,
  );

/**
 * What a page shows and plays of `userId`: frames its camera tile has painted, and for its
 * microphone the packets received and whether the room's <audio> element for it is playing.
 */
const seenAndHeard = (page: Page, userId: string) =>
  page.evaluate(async (userId) => {
    const room = window.parleyDemo?.room;
    const who = room?.participants.find((p) => p.userId === userId);
    const tracks = [...(who?.tracks.values() ?? [])];
    const mic = tracks.find((t) => t.kind === 'audio');
    const camera = tracks.find((t) => t.kind === 'video' && t.source === 'camera');
    const video = camera
      ? document.querySelector<HTMLVideoElement>(`#tiles .tile[data-producer="${camera.producerId}"] video`)
      : null;
    const audio = mic
      ? document.querySelector<HTMLAudioElement>(`audio[data-parley-track="${mic.track.id}"]`)
      : null;
    const micStats = mic ? await room?.trackStats(mic.producerId) : null;
    return {
      frames: video?.getVideoPlaybackQuality().totalVideoFrames ?? 0,
      videoWidth: video?.videoWidth ?? 0,
      audioPackets: micStats?.packetsReceived ?? 0,
      audioPlaying:
        audio !== null &&
        !audio.paused &&
        (audio.srcObject as MediaStream | null)?.getTracks()[0] === mic?.track,
    };
  }, userId);

/** The tile of `userId`'s camera on a page: its producer, size, the layer the server granted, paused. */
const cameraTile = (page: Page, userId: string) =>
  page.evaluate((userId) => {
    const who = window.parleyDemo?.room?.participants.find((p) => p.userId === userId);
    const camera = [...(who?.tracks.values() ?? [])].find((t) => t.source === 'camera');
    const el = camera
      ? document.querySelector<HTMLElement>(`#tiles .tile[data-producer="${camera.producerId}"]`)
      : null;
    const rect = el?.getBoundingClientRect();
    return {
      producerId: camera?.producerId ?? '',
      width: (rect?.width ?? 0) * devicePixelRatio,
      height: (rect?.height ?? 0) * devicePixelRatio,
      top: rect?.top ?? 0,
      bottom: rect?.bottom ?? 0,
      layer: el?.dataset.layer === undefined ? null : Number(el.dataset.layer),
      paused: el?.hasAttribute('data-paused') ?? false,
    };
  }, userId);

/** A simulcast encoding's layer from its rid: mediasoup-client names them r0, r1, r2 (lowest first). */
const layerOfRid = (rid: string) => Number(/^r(\d+)$/.exec(rid)?.[1] ?? 'qhf'.indexOf(rid));

const receivedVideo = (page: Page, producerId: string) =>
  page.evaluate(async (id) => (await window.parleyDemo?.room?.trackStats(id)) ?? null, producerId);

describe('the demo’s conference room, driven like a user (three Chromium pages, one at phone width)', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;
  let carol: BrowserPage;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest, devTokens: true });
    [alice, bob, carol] = await Promise.all([
      openBrowser(),
      openBrowser(),
      openBrowser({ width: 390, height: 844 }),
    ]);
    await Promise.all([
      signIn(alice.page, srv, 'Alice'),
      signIn(bob.page, srv, 'Bob'),
      signIn(carol.page, srv, 'Carol'),
    ]);
    for (const [name, b] of [
      ['alice', alice],
      ['bob', bob],
      ['carol', carol],
    ] as const) {
      ids[name] = (await b.page.evaluate(() => window.parleyDemo?.client?.signaling.userId)) ?? '';
    }
  });

  afterAll(async () => {
    const errors = [alice, bob, carol].flatMap((b) => b?.errors ?? []);
    await Promise.all([alice?.close(), bob?.close(), carol?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('Lobby has a Join button; everyone joins and sees a tile per member', async () => {
    for (const b of [alice, bob, carol]) {
      await b.page.click('#join-lobby');
      await b.page.waitForSelector('#toggle-mic');
    }
    for (const b of [alice, bob, carol]) {
      await b.page.waitForFunction(() => document.querySelectorAll('#tiles .tile').length === 3, undefined, {
        timeout: 10_000,
      });
    }
    expect(await alice.page.locator('#toggle-camera').getAttribute('aria-pressed')).toBe('false');
  });

  it('camera on shows Alice’s video to the others; off takes it away', async () => {
    await alice.page.click('#toggle-camera');
    await alice.page.waitForSelector('#toggle-camera[aria-pressed="true"]');
    for (const b of [bob, carol]) {
      await b.page.waitForFunction(
        (userId) =>
          [...document.querySelectorAll<HTMLElement>(`#tiles .tile[data-user="${userId}"] video`)].some(
            (v) => (v as HTMLVideoElement).videoWidth > 0,
          ),
        ids.alice,
        { timeout: 10_000 },
      );
      expect(await videoTilesOf(b.page, ids.alice)).toBe(1);
    }
    // Nothing overflows sideways at phone width.
    expect(await carol.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

    await alice.page.click('#toggle-camera');
    await alice.page.waitForSelector('#toggle-camera[aria-pressed="false"]');
    await bob.page.waitForFunction(
      (userId) => !document.querySelector(`#tiles .tile[data-user="${userId}"] video`),
      ids.alice,
    );
  });

  it('three tabs in Lobby, every camera on: each decodes the other two videos and plays the other two voices', async () => {
    const pages = { alice, bob, carol };
    for (const b of [alice, bob, carol]) {
      await b.page.click('#toggle-camera');
      await b.page.waitForSelector('#toggle-camera[aria-pressed="true"]');
    }
    for (const [me, b] of Object.entries(pages)) {
      for (const other of Object.keys(pages)) {
        if (other === me) continue;
        const userId = ids[other] ?? '';
        await waitUntil(
          async () => (await seenAndHeard(b.page, userId)).videoWidth > 0,
          `${me} shows ${other}'s camera`,
          15_000,
          100,
        );
        const base = await seenAndHeard(b.page, userId);
        await waitUntil(
          async () => {
            const now = await seenAndHeard(b.page, userId);
            return (
              now.frames > base.frames + 10 && now.audioPackets > base.audioPackets + 20 && now.audioPlaying
            );
          },
          `${me} to see ${other} (frames painted) and hear them (packets in, <audio> playing)`,
          15_000,
          100,
        );
      }
      // One tile per member, each with a playing video, and every tile names its member.
      expect(
        await b.page.evaluate(() =>
          [...document.querySelectorAll('#tiles .tile')].map((t) => ({
            video: (t.querySelector('video')?.videoWidth ?? 0) > 0,
            named: (t.querySelector('.tile-name')?.textContent ?? '').length > 0,
          })),
        ),
      ).toEqual([
        { video: true, named: true },
        { video: true, named: true },
        { video: true, named: true },
      ]);
    }
    expect(await carol.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await carol.page.screenshot({ path: screenshotPath('demo-conference-phone.png') });
    const desktop = screenshotPath('demo-conference-desktop.png');
    await alice.page.screenshot({ path: desktop });
    // PARLEY_UPDATE_SCREENSHOT=1 also refreshes the README's conference screenshot.
    if (process.env.PARLEY_UPDATE_SCREENSHOT === '1')
      copyFileSync(desktop, join(ROOT, 'docs/demo-conference.png'));
  });

  it('each remote tile gets the simulcast layer of its size: a wide desktop tile gets a higher one than a phone tile', async () => {
    await bob.page.setViewportSize({ width: 1600, height: 900 });
    const grantedFor = async (b: BrowserPage) => {
      let tile = await cameraTile(b.page, ids.alice ?? '');
      await waitUntil(
        async () => {
          tile = await cameraTile(b.page, ids.alice ?? '');
          return tile.layer !== null && tile.layer === simulcastLayerFor(tile.width, tile.height);
        },
        'the tile’s layer, granted by the server, to match its size',
        15_000,
        100,
      );
      return tile;
    };
    const phone = await grantedFor(carol);
    const desktop = await grantedFor(bob);
    expect(desktop.layer, JSON.stringify({ phone, desktop })).toBeGreaterThan(phone.layer ?? 0);
    // What arrives depends on what Alice's encoder sends: on a busy machine Chromium stops sending
    // the upper layers (CPU adaptation; CI once saw both tiles at one width). So each tile must get
    // the widest layer Alice sends at or below the layer it was granted: with two or more layers
    // sent, the desktop tile gets wider frames than the phone tile.
    const sentWidths = async () =>
      (await alice.page.evaluate(async () => (await window.parleyDemo?.room?.sendStats('camera')) ?? []))
        .filter((l) => l.rid !== null && l.frameWidth > 0)
        .map((l) => ({ ...l, layer: layerOfRid(l.rid!) }));
    const widestAtOrBelow = (layers: { layer: number; frameWidth: number }[], layer: number) =>
      Math.max(0, ...layers.filter((l) => l.layer <= layer).map((l) => l.frameWidth));
    let seen = '';
    await waitUntil(
      async () => {
        const [sent, p, d] = await Promise.all([
          sentWidths(),
          receivedVideo(carol.page, phone.producerId),
          receivedVideo(bob.page, desktop.producerId),
        ]);
        const want = [widestAtOrBelow(sent, phone.layer ?? 0), widestAtOrBelow(sent, desktop.layer ?? 0)];
        seen = JSON.stringify({ sent, want, got: [p?.frameWidth, d?.frameWidth] });
        return want[0] > 0 && p?.frameWidth === want[0] && d?.frameWidth === want[1];
      },
      'each tile to receive the widest layer Alice sends at or below its own',
      20_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${seen}`);
    });
    // That sample is the proof: the grants differ (above), and each tile got exactly the widest layer
    // sent at or below its grant. A second sample taken after it, comparing the two widths again,
    // failed once in a local run of the e2e tier (Dec 2, 1.4 s into the test, message not kept):
    // most likely it raced the encoder's CPU adaptation, as the comment above describes.
    await bob.page.setViewportSize({ width: 1000, height: 720 });
  });

  it('a tile out of view is paused on the server, and resumes when it comes back', async () => {
    const page = carol.page;
    await page.evaluate(() => window.scrollTo(0, 0));
    const before = await cameraTile(page, ids.alice ?? '');
    expect(before.top).toBeGreaterThan(40);
    // A window so short that Alice's tile is below the fold.
    const short = Math.floor(before.top) - 10;
    await page.setViewportSize({ width: 390, height: short });
    const hidden = await cameraTile(page, ids.alice ?? '');
    expect(hidden.top).toBeGreaterThanOrEqual(short);
    await page.waitForSelector(`#tiles .tile[data-producer="${hidden.producerId}"][data-paused]`);
    // Paused at the SFU: what was in flight arrives, then nothing more.
    let last = (await receivedVideo(page, hidden.producerId))?.packetsReceived ?? 0;
    let still = 0;
    await waitUntil(
      async () => {
        const now = (await receivedVideo(page, hidden.producerId))?.packetsReceived ?? 0;
        still = now === last ? still + 1 : 0;
        last = now;
        return still >= 5;
      },
      'no more packets of a paused tile',
      15_000,
      200,
    );
    // The other member's camera, on screen or not, is untouched by Alice's tile being paused.
    const bobTile = await cameraTile(page, ids.bob ?? '');
    expect(bobTile.paused).toBe(bobTile.top >= short);

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForSelector(`#tiles .tile[data-producer="${hidden.producerId}"]:not([data-paused])`);
    await waitUntil(
      async () => ((await receivedVideo(page, hidden.producerId))?.packetsReceived ?? 0) > last + 20,
      'Alice’s camera flowing again once her tile is back in view',
      15_000,
      100,
    );
    for (const b of [bob, carol]) {
      await b.page.click('#toggle-camera');
      await b.page.waitForSelector('#toggle-camera[aria-pressed="false"]');
    }
  });

  it('the active speaker’s tile is highlighted', async () => {
    // Only Alice's microphone is on: she is the one speaking.
    try {
      for (const b of [bob, carol]) {
        await b.page.click('#toggle-mic');
        await b.page.waitForSelector('#toggle-mic[aria-pressed="false"]');
      }
      // The SFU's dominant-speaker detection needs Alice's audio to arrive in real time: on a loaded
      // machine (load 17, Dec 2) it did not come within 15 s; the cap is now Playwright's 30 s.
      await bob.page.waitForSelector(`#tiles .tile.speaking[data-user="${ids.alice}"]`);
      expect(await bob.page.locator('#tiles .tile.speaking').count()).toBe(1);
    } finally {
      // The microphones back on even when this failed, so that the next test starts as it expects.
      for (const b of [bob, carol]) {
        if ((await b.page.getAttribute('#toggle-mic', 'aria-pressed')) === 'false') {
          await b.page.click('#toggle-mic');
          await b.page.waitForSelector('#toggle-mic[aria-pressed="true"]');
        }
      }
    }
  });

  it('mute shows on the others’ tiles; leaving removes the tile', async () => {
    await bob.page.click('#toggle-mic');
    await bob.page.waitForSelector('#toggle-mic[aria-pressed="false"]');
    await alice.page.waitForSelector(`#tiles .tile[data-user="${ids.bob}"][data-muted]`);
    await bob.page.click('#toggle-mic');
    await alice.page.waitForSelector(`#tiles .tile[data-user="${ids.bob}"]:not([data-muted])`);

    await carol.page.click('#leave-room');
    await carol.page.waitForSelector('#join-lobby');
    await alice.page.waitForFunction(() => document.querySelectorAll('#tiles .tile').length === 2);
  });
});
