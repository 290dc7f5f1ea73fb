import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConferenceRoom, ParleyClient } from '../../src/client/index.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { openBrowser, serveExample, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

interface PageApp {
  app?: { parley: ParleyClient; room: ConferenceRoom };
}

/**
 * What the example page shows and plays of `userId`: frames decoded of its camera, packets of its
 * voice, whether the room's <audio> element for that voice is playing, and its tile's label.
 */
const of = (page: Page, userId: string) =>
  page.evaluate(async (userId) => {
    const room = (window as unknown as PageApp).app!.room;
    const who = room.participants.find((p) => p.userId === userId);
    const tracks = [...(who?.tracks.values() ?? [])];
    const camera = tracks.find((t) => t.source === 'camera');
    const mic = tracks.find((t) => t.kind === 'audio');
    const video = camera ? await room.trackStats(camera.producerId) : null;
    const voice = mic ? await room.trackStats(mic.producerId) : null;
    const audio = mic
      ? document.querySelector<HTMLAudioElement>(`audio[data-parley-track="${mic.track.id}"]`)
      : null;
    const tile = document.querySelector<HTMLElement>(`#tiles .tile[data-user="${userId}"]`);
    return {
      frames: video?.framesDecoded ?? 0,
      packets: voice?.packetsReceived ?? 0,
      playing: audio !== null && !audio.paused,
      painted: (tile?.querySelector('video')?.videoWidth ?? 0) > 0,
      label: tile?.querySelector('span')?.textContent ?? null,
    };
  }, userId);

describe('docs/sdk.md "Conference rooms": examples/conference/index.html, on another origin', () => {
  let srv: E2eServer;
  let site: Awaited<ReturnType<typeof serveExample>>;
  const pages: Record<'Alice' | 'Bob', BrowserPage> = {} as never;
  const ids: Record<string, string> = {};
  const failures: string[] = [];

  beforeAll(async () => {
    assertLoopbackOnly();
    // The default station (no manifest): its Lobby is a conference room.
    srv = await startE2eServer({ devTokens: true });
    site = await serveExample('examples/conference/index.html');
    for (const name of ['Alice', 'Bob'] as const) {
      const b = await openBrowser();
      b.page.on('response', (r) => {
        if (r.status() >= 400) failures.push(`${r.status()} ${r.url()}`);
      });
      await b.page.goto(`${site.origin}/?server=${encodeURIComponent(srv.httpUrl)}&name=${name}`);
      await b.page.waitForFunction(() => (window as unknown as PageApp).app !== undefined, undefined, {
        timeout: 15_000,
      });
      ids[name] =
        (await b.page.evaluate(() => (window as unknown as PageApp).app!.parley.signaling.userId)) ?? '';
      pages[name] = b;
    }
  });

  afterAll(async () => {
    await Promise.all(Object.values(pages).map((b) => b.close()));
    await site?.close();
    await srv?.close();
  });

  it('both join Lobby with microphone and camera: each sees the other’s video and hears the other’s voice', async () => {
    for (const [me, other] of [
      ['Alice', 'Bob'],
      ['Bob', 'Alice'],
    ] as const) {
      const page = pages[me].page;
      await page.waitForFunction(() => document.getElementById('count')?.textContent === '2 in lobby');
      await waitUntil(
        async () => (await of(page, ids[other])).painted,
        `${me} shows ${other}'s camera`,
        15_000,
        100,
      );
      const base = await of(page, ids[other]);
      await waitUntil(
        async () => {
          const now = await of(page, ids[other]);
          return now.frames > base.frames + 10 && now.packets > base.packets + 20 && now.playing;
        },
        `${me} to decode ${other}'s camera and play ${other}'s voice`,
        15_000,
        100,
      );
      expect((await of(page, ids[other])).label).toBe(other);
      expect(await page.locator('#mic').getAttribute('aria-pressed')).toBe('true');
      expect(await page.locator('#camera').getAttribute('aria-pressed')).toBe('true');
      // Two tiles: mine and the other's.
      expect(await page.locator('#tiles .tile').count()).toBe(2);
    }
  });

  it('mute is told to the other side; camera off takes the tile away; leave is seen', async () => {
    const alice = pages.Alice.page;
    const bob = pages.Bob.page;
    const bobSeesAliceMuted = () =>
      bob.evaluate((userId) => {
        const who = (window as unknown as PageApp).app!.room.participants.find((p) => p.userId === userId);
        return [...(who?.tracks.values() ?? [])].find((t) => t.kind === 'audio')?.muted ?? null;
      }, ids.Alice);
    await alice.click('#mic');
    await alice.waitForSelector('#mic[aria-pressed="false"]');
    await waitUntil(async () => (await bobSeesAliceMuted()) === true, 'Bob to see Alice muted');
    await alice.click('#mic');
    await alice.waitForSelector('#mic[aria-pressed="true"]');
    await waitUntil(async () => (await bobSeesAliceMuted()) === false, 'Bob to see Alice unmuted');

    await alice.click('#camera');
    await alice.waitForSelector('#camera[aria-pressed="false"]');
    await bob.waitForFunction(
      (userId) => !document.querySelector(`#tiles .tile[data-user="${userId}"]`),
      ids.Alice,
    );

    await alice.click('#leave');
    await alice.waitForFunction(() => document.getElementById('count')?.textContent === 'left');
    await bob.waitForFunction(() => document.getElementById('count')?.textContent === '1 in lobby');
  });

  it('nothing failed on the way (no CORS block, no page error)', () => {
    expect(failures).toEqual([]);
    expect([...pages.Alice.errors, ...pages.Bob.errors]).toEqual([]);
  });
});
