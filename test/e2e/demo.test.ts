import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { sleep } from '../helpers/wait.js';
import { joinChannel, pressButton, releaseButton, signIn, text } from './demo-driver.js';
import {
  openBrowser,
  ROOT,
  screenshotPath,
  startE2eServer,
  type BrowserPage,
  type E2eServer,
} from './harness.js';

const manifest = {
  name: 'Metro Dispatch',
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 50 },
    { id: 'field-ops', name: 'Field Ops', mode: 'ptt', maxParticipants: 50 },
    { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 20 },
  ],
};

/** PARLEY_UPDATE_SCREENSHOT=1 also refreshes docs/demo.png (the README's screenshot). */
const UPDATE_README_SCREENSHOT = process.env.PARLEY_UPDATE_SCREENSHOT === '1';

describe('the demo page, driven by clicks and key presses', () => {
  let srv: E2eServer;
  let alice: BrowserPage; // desktop
  let bob: BrowserPage; // phone

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest, devTokens: true });
    [alice, bob] = await Promise.all([
      openBrowser({ width: 1000, height: 700 }),
      openBrowser({ width: 390, height: 844 }),
    ]);
  });

  afterAll(async () => {
    const errors = [alice, bob].flatMap((b) => b?.errors ?? []);
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  // A whole user journey (sign-in, PTT, denial, a call, leaving) in two pages: 60 s, not the
  // default 20 s, so a busy machine does not cut it short; every step keeps its own wait.
  it('sign in by name, see the channels, talk (space bar and button), get denied, and call 1:1', async () => {
    // ---- sign in: Alice clicks, Bob presses Enter ----
    await alice.page.goto(`${srv.httpUrl}/`);
    // The page names itself once it has loaded the station's manifest: wait for it, not a fixed time.
    await alice.page.waitForFunction(() => document.title !== 'Parley');
    expect(await alice.page.title()).toBe('Metro Dispatch · Parley');
    await alice.page.fill('#signin-name', 'Alice');
    await alice.page.click('#signin-submit');
    await alice.page.waitForSelector('#conn-state[data-state="connected"]');
    expect(await text(alice.page, '#conn-state')).toBe('Connected');
    expect(await text(alice.page, '#me')).toBe('Alice');
    const channels = await alice.page.locator('#channels li h3').allTextContents();
    expect(channels).toEqual(['Dispatch', 'Field Ops', 'Lobby']);
    await signIn(bob.page, srv, 'Bob');

    // ---- both join Dispatch ----
    await joinChannel(alice.page, 'dispatch');
    await joinChannel(bob.page, 'dispatch');
    for (const p of [alice, bob]) {
      await p.page.waitForFunction(() => document.querySelectorAll('#members li').length === 2);
    }
    expect(await alice.page.locator('#members li .name').allTextContents()).toEqual(['Alice (you)', 'Bob']);
    expect(await text(bob.page, '#speaker-banner')).toBe('Channel is clear');

    // ---- Alice holds the space bar: Bob sees her speaking; Bob's press is denied with her name ----
    await alice.page.keyboard.down('Space');
    await alice.page.waitForSelector('#ptt-button[data-state="talking"]');
    await bob.page.waitForFunction(() =>
      /^Alice is speaking · 0:0\d$/.test(document.getElementById('speaker-banner')?.textContent ?? ''),
    );
    expect(await bob.page.locator('#members li.speaking .name').textContent()).toBe('Alice');
    await pressButton(bob.page);
    await bob.page.waitForFunction(
      () => document.getElementById('ptt-status')?.textContent === 'Alice is speaking',
    );
    await bob.page.screenshot({ path: screenshotPath('demo-phone-denied.png') });
    await releaseButton(bob.page);
    await alice.page.keyboard.up('Space');
    await bob.page.waitForFunction(
      () => document.getElementById('speaker-banner')?.textContent === 'Channel is clear',
    );

    // ---- Bob holds the button (phone) ----
    await pressButton(bob.page);
    await bob.page.waitForSelector('#ptt-button[data-state="talking"]');
    await alice.page.waitForFunction(() =>
      document.getElementById('speaker-banner')?.textContent?.startsWith('Bob is speaking · 0:01'),
    );
    const desktop = screenshotPath('demo-desktop.png');
    await alice.page.screenshot({ path: desktop });
    if (UPDATE_README_SCREENSHOT) copyFileSync(desktop, join(ROOT, 'docs/demo.png'));
    await releaseButton(bob.page);
    await alice.page.waitForFunction(
      () => document.getElementById('speaker-banner')?.textContent === 'Channel is clear',
    );

    // ---- 1:1 call: Alice calls Bob from the member list; Bob accepts; mute; hang up ----
    const bobId = await bob.page.evaluate(() => window.parleyDemo?.client?.signaling.userId);
    await alice.page.click(`button[data-call="${bobId}"]`);
    await alice.page.waitForSelector('#call-panel[data-state="ringing"]');
    expect(await text(alice.page, '#call-title')).toBe('Calling Bob…');
    await bob.page.waitForSelector('#call-panel[data-state="ringing"][data-direction="incoming"]');
    expect(await text(bob.page, '#call-title')).toBe('Alice is calling…');
    await bob.page.click('#call-accept');
    for (const p of [alice, bob]) await p.page.waitForSelector('#call-panel[data-state="active"]');
    expect(await text(bob.page, '#call-title')).toMatch(/^In call with Alice · 0:0\d$/);
    // A slow press, held across two ticks of the call timer (every 250 ms): it still clicks. When
    // each tick rebuilt the panel's buttons, the release landed on a new button and no click fired
    // (a hang-up was lost that way in CI); time itself is the point of this wait.
    await alice.page.hover('#call-mute');
    await alice.page.mouse.down();
    await sleep(600);
    await alice.page.mouse.up();
    await alice.page.waitForSelector('#call-muted');
    expect(await text(alice.page, '#call-mute')).toBe('Unmute');
    expect(await alice.page.evaluate(() => window.parleyDemo?.call?.muted)).toBe(true);
    // Alice turns her camera on mid-call: Bob's panel shows her video.
    await alice.page.click('#toggle-call-camera');
    await alice.page.waitForSelector('#toggle-call-camera[aria-pressed="true"]');
    await bob.page.waitForFunction(
      () => {
        const v = document.getElementById('call-video') as HTMLVideoElement | null;
        return v !== null && !v.hidden && v.videoWidth > 0;
      },
      undefined,
      { timeout: 10_000 },
    );
    await bob.page.screenshot({ path: screenshotPath('demo-phone-call.png') });
    await alice.page.click('#call-hangup');
    await bob.page.waitForSelector('#call-panel', { state: 'hidden' });
    await bob.page.waitForFunction(
      () => document.getElementById('toast')?.textContent === 'The other side hung up',
    );
    await alice.page.waitForSelector('#call-panel', { state: 'hidden' });

    // ---- Bob leaves the channel: Alice's member list follows ----
    await bob.page.click('#leave-channel');
    await bob.page.waitForSelector('#channels');
    await alice.page.waitForFunction(() => document.querySelectorAll('#members li').length === 1);
  }, 60_000);

  it('in production mode the page asks for a token instead of minting one', async () => {
    const prod = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' }, manifest, devTokens: false });
    const carol = await openBrowser({ width: 390, height: 844 });
    try {
      const page = carol.page;
      await page.goto(`${prod.httpUrl}/`);
      await page.fill('#signin-name', 'Carol');
      await page.click('#signin-submit');
      await page.waitForSelector('#signin-error:not([hidden])');
      expect(await text(page, '#signin-error')).toMatch(/production mode/);
      expect(await page.locator('details.token-box').getAttribute('open')).not.toBeNull();
      await page.fill('#signin-token', await prod.token('carol', 'Carol'));
      await page.click('#signin-token-submit');
      await page.waitForSelector('#conn-state[data-state="connected"]');
      expect(await text(page, '#me')).toBe('Carol');
      await page.waitForSelector('#join-dispatch');
      await page.click('#sign-out');
      await page.waitForSelector('#signin-name');
    } finally {
      await carol.close();
      await prod.close();
    }
  });
});
