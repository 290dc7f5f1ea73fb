import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { TEST_SECRET } from '../helpers/server.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { signIn } from './demo-driver.js';
import { openBrowser, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

const manifest = {
  name: 'Metro Dispatch',
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 50 }],
};

describe('the demo’s Admin panel', () => {
  let srv: E2eServer;
  let boss: BrowserPage;
  let bob: BrowserPage;

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

    const token = await new TokenIssuer({ secret: TEST_SECRET }).issue({
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
});
