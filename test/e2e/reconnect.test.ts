import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropFromServer } from '../client/helpers.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { joinChannel, packetsIn, signIn } from './demo-driver.js';
import { openBrowser, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

const manifest = {
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 50 }],
};

interface ReconnectLog {
  states: string[];
  pill: string[];
  reconnected: { resumed: boolean; downtimeMs: number }[];
  left: string[];
  /** The PTT channel's media states. */
  media: string[];
  /** `canTalk` each time the media said `connected`: connected means ready to talk. */
  canTalkWhenConnected: boolean[];
}

declare global {
  interface Window {
    reconnectLog: ReconnectLog;
  }
}

/** Records connection states, what the page shows in its connection pill, and leaves it sees. */
async function watch(b: BrowserPage): Promise<void> {
  await b.page.evaluate(() => {
    const log: ReconnectLog = {
      states: [],
      pill: [],
      reconnected: [],
      left: [],
      media: [],
      canTalkWhenConnected: [],
    };
    window.reconnectLog = log;
    const demo = window.parleyDemo;
    demo?.client?.signaling.on('connectionStateChanged', (s) => log.states.push(s));
    demo?.client?.signaling.on('reconnected', ({ resumed, downtimeMs }) =>
      log.reconnected.push({ resumed, downtimeMs }),
    );
    demo?.channel?.on('participantLeft', (p) => log.left.push(p.name));
    demo?.channel?.on('mediaStateChanged', (m) => {
      log.media.push(m);
      if (m === 'connected') log.canTalkWhenConnected.push(demo.channel?.canTalk === true);
    });
    new MutationObserver(() => {
      const state = document.getElementById('conn-state')?.dataset.state;
      if (state && log.pill[log.pill.length - 1] !== state) log.pill.push(state);
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
}

describe('reconnect: a dropped socket is resumed within the grace window', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest, devTokens: true });
    [alice, bob] = await Promise.all([openBrowser(), openBrowser()]);
    await Promise.all([signIn(alice.page, srv, 'Alice'), signIn(bob.page, srv, 'Bob')]);
    await joinChannel(alice.page, 'dispatch');
    await joinChannel(bob.page, 'dispatch');
    await Promise.all([watch(alice), watch(bob)]);
  });

  afterAll(async () => {
    const errors = [alice, bob].flatMap((b) => b?.errors ?? []);
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('A resumes the same session; B sees no leave; A rebuilds its media, can still talk and B hears it', async () => {
    const sessionId = await alice.page.evaluate(() => window.parleyDemo?.client?.signaling.sessionId);
    expect(sessionId).toBeTruthy();
    const { media, sessions } = srv.server.internalsForTesting;
    const userId = sessions.get(sessionId!)?.userId ?? '';
    expect(media.heldBy(userId).transports).toBeGreaterThan(0);
    await dropFromServer(srv, sessionId!);
    await alice.page.waitForFunction(() => window.reconnectLog.reconnected.length > 0, undefined, {
      timeout: 10_000,
    });
    const log = await alice.page.evaluate(() => window.reconnectLog);
    expect(log.reconnected).toEqual([{ resumed: true, downtimeMs: expect.any(Number) as number }]);
    expect(log.states).toEqual(['reconnecting', 'connected']);
    expect(log.pill).toEqual(['reconnecting', 'connected']); // what the user saw
    expect(await alice.page.evaluate(() => window.parleyDemo?.client?.signaling.sessionId)).toBe(sessionId);
    // resumed: true with the same session id is the proof that it came back within the window.

    // Nobody saw Alice go.
    expect(await bob.page.evaluate(() => window.reconnectLog.left)).toEqual([]);
    expect(await bob.page.locator('#members li').count()).toBe(2);

    // Her transports were closed at suspension (issue 13); after the resume the server said
    // media:closed {suspended} and the SDK rebuilt them: only a rebuild goes through `connecting`.
    await alice.page.waitForFunction(() => window.parleyDemo?.channel?.mediaState === 'connected');
    const media2 = await alice.page.evaluate(() => window.reconnectLog.media);
    expect(media2.slice(media2.lastIndexOf('reconnecting'))).toEqual([
      'reconnecting',
      'connecting',
      'connected',
    ]);
    await waitUntil(() => media.heldBy(userId).transports > 0, 'Alice’s transports to be rebuilt', 5_000);
    // `connected` came only once her microphone was published again (it used to come as soon as
    // the receive transport connected, and a press in between was refused as listen-only).
    const canTalk = await alice.page.evaluate(() => window.reconnectLog.canTalkWhenConnected);
    expect(canTalk.length).toBeGreaterThan(0);
    expect(canTalk.every(Boolean)).toBe(true);

    // Alice can still talk on the rebuilt media, and Bob hears her.
    const before = await packetsIn(bob.page);
    await alice.page.keyboard.down('Space');
    await alice.page.waitForFunction(() => window.parleyDemo?.channel?.talkState === 'talking');
    await bob.page.waitForFunction(() =>
      document.getElementById('speaker-banner')?.textContent?.startsWith('Alice is speaking'),
    );
    await waitUntil(async () => (await packetsIn(bob.page)) - before > 25, 'Bob to hear Alice', 5_000, 50);
    await alice.page.keyboard.up('Space');
    await bob.page.waitForFunction(
      () => document.getElementById('speaker-banner')?.textContent === 'Channel is clear',
    );
    expect(await bob.page.evaluate(() => window.reconnectLog.left)).toEqual([]);
    console.info(`reconnect: drop → resumed (client downtime ${log.reconnected[0]?.downtimeMs} ms)`);
    // A media rebuild (ICE and DTLS again) is part of it since issue 13: about 1 s alone, but past
    // vitest's default 20 s under the full suite on a loaded 2-core machine. Behaviour only.
  }, 60_000);
});
