import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { assertLoopbackOnly } from '../helpers/netns.js';
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
    await carol.page.screenshot({ path: screenshotPath('demo-conference-phone.png') });
    const desktop = screenshotPath('demo-conference-desktop.png');
    await alice.page.screenshot({ path: desktop });
    // PARLEY_UPDATE_SCREENSHOT=1 also refreshes the README's conference screenshot.
    if (process.env.PARLEY_UPDATE_SCREENSHOT === '1')
      copyFileSync(desktop, join(ROOT, 'docs/demo-conference.png'));
    // Nothing overflows sideways at phone width.
    expect(await carol.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

    await alice.page.click('#toggle-camera');
    await alice.page.waitForSelector('#toggle-camera[aria-pressed="false"]');
    await bob.page.waitForFunction(
      (userId) => !document.querySelector(`#tiles .tile[data-user="${userId}"] video`),
      ids.alice,
    );
  });

  it('the active speaker’s tile is highlighted', async () => {
    // Only Alice's microphone is on: she is the one speaking.
    for (const b of [bob, carol]) {
      await b.page.click('#toggle-mic');
      await b.page.waitForSelector('#toggle-mic[aria-pressed="false"]');
    }
    await bob.page.waitForSelector(`#tiles .tile.speaking[data-user="${ids.alice}"]`, { timeout: 15_000 });
    expect(await bob.page.locator('#tiles .tile.speaking').count()).toBe(1);
    for (const b of [bob, carol]) {
      await b.page.click('#toggle-mic');
      await b.page.waitForSelector('#toggle-mic[aria-pressed="true"]');
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
