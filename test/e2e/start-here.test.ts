import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { probeFreePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';
import { openBrowser, serveExample, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

interface PageApp {
  app?: {
    parley: { signaling: { userId: string | null; state: string } };
    channel: {
      participants: unknown[];
      mediaState: string;
      talkState: string;
      getStats(): Promise<{
        inbound: { packetsReceived: number } | null;
        outbound: { packetsSent: number } | null;
      }>;
    };
    call(): {
      state: string;
      getAudioStats(): Promise<{ packetsReceived: number; packetsSent: number }>;
    } | null;
  };
}

const stats = (page: Page) =>
  page.evaluate(async () => {
    const s = await (window as unknown as PageApp).app!.channel.getStats();
    return { sent: s.outbound?.packetsSent ?? 0, received: s.inbound?.packetsReceived ?? 0 };
  });
const talkState = (page: Page) => page.evaluate(() => (window as unknown as PageApp).app!.channel.talkState);
const callStats = (page: Page) =>
  page.evaluate(async () => (await (window as unknown as PageApp).app!.call()?.getAudioStats()) ?? null);

describe('docs/sdk.md "Start here": the example page, on another origin, with the SDK from the server', () => {
  let srv: E2eServer;
  let site: Awaited<ReturnType<typeof serveExample>>;
  let alice: BrowserPage;
  let bob: BrowserPage;
  /** Every request the pages made to the Parley server, and every failed response. */
  const requests: string[] = [];
  const failures: string[] = [];

  const open = async (name: string): Promise<BrowserPage> => {
    const b = await openBrowser();
    b.page.on('request', (r) => {
      if (r.url().startsWith(srv.httpUrl)) requests.push(new URL(r.url()).pathname);
    });
    b.page.on('response', (r) => {
      if (r.status() >= 400) failures.push(`${r.status()} ${r.url()}`);
    });
    await b.page.goto(`${site.origin}/?server=${encodeURIComponent(srv.httpUrl)}&name=${name}`);
    await b.page.waitForFunction(
      () => (window as unknown as PageApp).app?.channel.mediaState === 'connected',
    );
    return b;
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    // The default station (no manifest): Lobby, Dispatch, Field Ops; no TURN_SECRET.
    srv = await startE2eServer({ devTokens: true });
    site = await serveExample('examples/start-here/index.html');
    expect(new URL(site.origin).origin).not.toBe(new URL(srv.httpUrl).origin);
    alice = await open('Alice');
    bob = await open('Bob');
  });

  afterAll(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await site?.close();
    await srv?.close();
  });

  it('signs in with a development token and shows who it is', async () => {
    for (const [b, name] of [
      [alice, 'Alice'],
      [bob, 'Bob'],
    ] as const) {
      expect(await b.page.locator('#me').textContent()).toMatch(
        new RegExp(`^${name} \\(dev-${name.toLowerCase()}-`),
      );
      expect(await b.page.locator('#state').textContent()).toBe('connected');
      await b.page.waitForFunction(
        () => (window as unknown as PageApp).app!.channel.participants.length === 2,
      );
    }
  });

  it('PTT: no packet leaves before the floor; once granted the other side hears it', async () => {
    // Bob talks first: Alice, connected all along, hears him and has still sent nothing.
    await bob.page.locator('#talk').hover();
    await bob.page.mouse.down();
    await waitUntil(async () => (await talkState(bob.page)) === 'talking', 'Bob to get the floor');
    await alice.page.waitForFunction(
      () => document.getElementById('speaker')?.textContent === 'Bob is speaking',
    );
    await waitUntil(async () => (await stats(alice.page)).received > 0, 'Alice to hear Bob');
    expect((await stats(alice.page)).sent).toBe(0);
    await bob.page.mouse.up();
    await alice.page.waitForFunction(
      () => document.getElementById('speaker')?.textContent === 'Channel is clear',
    );
    expect((await stats(alice.page)).sent).toBe(0);

    // Alice presses: granted, and now her microphone's packets flow and reach Bob.
    const bobBefore = (await stats(bob.page)).received;
    await alice.page.locator('#talk').hover();
    await alice.page.mouse.down();
    await waitUntil(async () => (await talkState(alice.page)) === 'talking', 'Alice to get the floor');
    await waitUntil(async () => (await stats(alice.page)).sent > 0, 'Alice to send');
    await waitUntil(async () => (await stats(bob.page)).received > bobBefore, 'Bob to hear Alice');
    await alice.page.mouse.up();
    await waitUntil(async () => (await talkState(alice.page)) === 'idle', 'Alice to release');
  });

  it('a 1:1 call: the callee accepts, and audio flows both ways into the <audio> element', async () => {
    const bobId = await bob.page.evaluate(() => (window as unknown as PageApp).app!.parley.signaling.userId);
    await alice.page.fill('#callee', bobId!);
    await alice.page.click('#call');
    await bob.page.waitForSelector('#accept:not([hidden])');
    expect(await bob.page.locator('#call-state').textContent()).toBe('Alice is calling');
    await bob.page.click('#accept');
    for (const b of [alice, bob]) {
      await b.page.waitForFunction(() => document.getElementById('call-state')?.textContent === 'active');
      await waitUntil(async () => ((await callStats(b.page))?.packetsReceived ?? 0) > 0, 'call audio');
      const tracks = await b.page.evaluate(
        () => (document.getElementById('remote') as HTMLAudioElement).srcObject instanceof MediaStream,
      );
      expect(tracks).toBe(true);
    }
    await alice.page.click('#hangup');
    await bob.page.waitForFunction(() =>
      document.getElementById('call-state')?.textContent?.startsWith('ended'),
    );
  });

  it('nothing failed on the way: no CORS block, no 503 for TURN (the station says there is none)', () => {
    expect(failures).toEqual([]);
    expect(requests).toContain('/sdk/parley.js');
    expect(requests).toContain('/api/dev-token');
    expect(requests).toContain('/api/station');
    expect(requests).not.toContain('/api/turn-credentials');
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  });

  it('from the same origin, a refused token, a wrong path and a dead server each say what they are', async () => {
    const deadPort = await probeFreePort();
    const page = await openBrowser();
    try {
      await page.page.goto(`${site.origin}/?server=${encodeURIComponent(srv.httpUrl)}&name=Eve`);
      await page.page.waitForFunction(() => (window as unknown as PageApp).app !== undefined);
      const outcomes = await page.page.evaluate<
        Record<string, { code: string; reason: string }>
      >(`(async () => {
        const { SignalingClient } = await import(${JSON.stringify(`${srv.httpUrl}/sdk/parley.js`)});
        const attempt = async (url, token) => {
          const c = new SignalingClient({ url, token, reconnectPolicy: { nextRetryDelayInMs: () => null } });
          try { await c.connect(); return { code: 'connected' }; }
          catch (e) { return { code: e.code, reason: e.reason }; }
          finally { c.close(); }
        };
        return {
          refused: await attempt(${JSON.stringify(srv.httpUrl)}, 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA'),
          wrongPath: await attempt(${JSON.stringify(`${srv.httpUrl}/voice`)}, 'a.b.c'),
          dead: await attempt('http://127.0.0.1:${deadPort}', 'a.b.c'),
        };
      })()`);
      expect(outcomes.refused).toMatchObject({ code: 'UNAUTHORIZED' });
      expect(outcomes.wrongPath).toMatchObject({ code: 'NOT_FOUND' });
      expect(outcomes.wrongPath.reason).toContain('/voice/ws');
      expect(outcomes.dead).toMatchObject({ code: 'CONNECTION_FAILED' });
      expect(outcomes.dead.reason).toContain(`127.0.0.1:${deadPort}`);
    } finally {
      await page.close();
    }
  });
});
