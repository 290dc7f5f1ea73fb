import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminParticipant } from '../../src/protocol/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TEST_SECRET } from '../helpers/server.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { signIn } from './demo-driver.js';
import { openBrowser, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

const manifest = {
  name: 'Metro Dispatch',
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 50 },
    { id: 'hall', name: 'Hall', mode: 'conference', maxParticipants: 50 },
  ],
};

describe('the demo’s Admin panel', () => {
  let srv: E2eServer;
  let boss: BrowserPage;
  let bob: BrowserPage;
  let token: string;
  /** What the server API says of Bob in the hall (the panel's own source, asked directly). */
  const bobInHall = async () => {
    const res = await fetch(`${srv.httpUrl}/api/admin/rooms/hall`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await res.json()) as { participants: AdminParticipant[] };
    return body.participants.find((p) => p.name === 'Bob');
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest, devTokens: true });
    [boss, bob] = await Promise.all([openBrowser(), openBrowser()]);
  });
  afterAll(async () => {
    await Promise.all([boss?.close(), bob?.close()]);
    await srv?.close();
  });

  it('is offered to admin tokens only, lists rooms and members, and removes a member', async () => {
    await signIn(bob.page, srv, 'Bob');
    expect(await bob.page.$('#admin-toggle')).toBeNull();
    await bob.page.click('#join-dispatch');
    await bob.page.waitForSelector('#ptt-button');

    token = await new TokenIssuer({ secret: TEST_SECRET }).issue({
      sub: 'boss',
      name: 'Boss',
      admin: true,
    });
    await boss.page.goto(`${srv.httpUrl}/`);
    await boss.page.click('summary');
    await boss.page.fill('#signin-token', token);
    await boss.page.click('#signin-token-submit');
    await boss.page.waitForSelector('#conn-state[data-state="connected"]');
    await boss.page.click('#admin-toggle');
    await boss.page.waitForSelector('#admin-panel [data-room="dispatch"] li');
    expect(await boss.page.textContent('#admin-panel [data-room="dispatch"]')).toContain('Bob');

    await boss.page.click('#admin-panel [data-room="dispatch"] .admin-remove');
    await bob.page.waitForSelector('#signin-name');
    expect(await bob.page.textContent('body')).toContain('An administrator removed you');
    await boss.page.waitForFunction(() => !document.querySelector('#admin-panel [data-room="dispatch"]'));
  }, 60_000);

  it('mutes and unmutes a conference member: the server pauses their microphone and both pages show it', async () => {
    // Bob was removed from dispatch above; he signs in again and joins a conference room.
    await signIn(bob.page, srv, 'Bob');
    await bob.page.click('#join-hall');
    await bob.page.waitForSelector('#toggle-mic[aria-pressed="true"]', { timeout: 10_000 });

    const mute = '#admin-panel [data-room="hall"] .admin-mute';
    await expect
      .poll(
        async () => {
          await boss.page.click('#admin-refresh');
          await boss.page.waitForSelector('#admin-panel .admin-head');
          return (await boss.page.$(mute)) !== null;
        },
        { timeout: 10_000, message: 'the Mute button for Bob (once his microphone is published)' },
      )
      .toBe(true);
    expect(await boss.page.textContent(mute)).toBe('Mute');

    await boss.page.click(mute);
    await bob.page.waitForSelector('#toggle-mic[aria-pressed="false"]');
    await boss.page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'Unmute', mute);
    expect(await boss.page.textContent('#admin-panel [data-room="hall"]')).toContain('Bob (muted)');
    expect(await bobInHall()).toMatchObject({ muted: true, producers: [{ kind: 'audio', paused: true }] });

    await boss.page.click(mute);
    await bob.page.waitForSelector('#toggle-mic[aria-pressed="true"]');
    await boss.page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'Mute', mute);
    expect(await bobInHall()).toMatchObject({ muted: false, producers: [{ kind: 'audio', paused: false }] });
  }, 60_000);
});
