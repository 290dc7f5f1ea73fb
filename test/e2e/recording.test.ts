import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropFromServer } from '../client/helpers.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { sleep } from '../helpers/wait.js';
import { joinChannel, signIn } from './demo-driver.js';
import {
  openBrowser,
  openSdkPage,
  screenshotPath,
  startE2eServer,
  type BrowserPage,
  type E2eServer,
} from './harness.js';

/*
 * Recording and replay in Chromium, through the demo and the SDK: Alice talks with Chromium's fake
 * microphone; Bob's burst list shows it, `history()` lists it, and `replay(id)` plays the Ogg Opus
 * file through the channel's audio output to its end. A burst spoken while Bob is offline is
 * marked missed after he reconnects.
 */

const manifest = {
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 50, record: true }],
};

interface RecordingLog {
  events: { id: string; speaker: string; missed: boolean }[];
}

declare global {
  interface Window {
    recordingLog: RecordingLog;
    carol: { signaling: { sessionId: string | null; state: string } };
  }
}

describe('recording and replay in Chromium (SDK and demo)', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;
  let carol: BrowserPage | undefined;

  async function aliceTalks(ms: number): Promise<void> {
    await alice.page.keyboard.down('Space');
    await alice.page.waitForFunction(() => window.parleyDemo?.channel?.talkState === 'talking');
    await sleep(ms); // the talk burst: the fake microphone's audio flows meanwhile
    await alice.page.keyboard.up('Space');
    await alice.page.waitForFunction(() => window.parleyDemo?.channel?.talkState === 'idle');
  }

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest, devTokens: true });
    [alice, bob] = await Promise.all([openBrowser(), openBrowser()]);
    await Promise.all([signIn(alice.page, srv, 'Alice'), signIn(bob.page, srv, 'Bob')]);
    await joinChannel(alice.page, 'dispatch');
    await joinChannel(bob.page, 'dispatch');
    await bob.page.evaluate(() => {
      const log: RecordingLog = { events: [] };
      window.recordingLog = log;
      window.parleyDemo?.channel?.on('recording', (r, { missed }) =>
        log.events.push({ id: r.id, speaker: r.speaker.name, missed }),
      );
    });
  });

  afterAll(async () => {
    const errors = [alice, bob].flatMap((b) => b?.errors ?? []);
    await Promise.all([alice?.close(), bob?.close(), carol?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('a burst appears in the list and in history(), and Play replays it to the end', async () => {
    expect(await bob.page.locator('#bursts').isHidden()).toBe(true); // nothing recorded yet
    await aliceTalks(1_500);
    await bob.page.waitForSelector('#burst-list li.burst');
    const row = bob.page.locator('#burst-list li.burst').first();
    expect(await row.locator('.burst-who').textContent()).toBe('Alice');
    expect(await row.getAttribute('data-missed')).toBe('false');
    const id = await row.getAttribute('data-recording');

    const history = await bob.page.evaluate(() => window.parleyDemo?.channel?.history());
    expect(history?.map((r) => r.id)).toEqual([id]);
    expect(history?.[0]).toMatchObject({ roomId: 'dispatch', speaker: { name: 'Alice' } });
    const durationMs = history?.[0]?.durationMs ?? 0;
    expect(durationMs).toBeGreaterThan(300); // real audio from the fake microphone
    expect(await bob.page.evaluate(() => window.recordingLog.events)).toEqual([
      { id, speaker: 'Alice', missed: false },
    ]);

    // Play: the clip element appears, actually plays (its clock moves), and goes when it ends.
    await bob.page.click(`button[data-play="${id}"]`);
    await bob.page.waitForFunction(() => {
      const el = document.querySelector<HTMLAudioElement>('audio[data-parley-clip]');
      return el !== null && !el.paused && el.currentTime > 0.2;
    });
    const duration = await bob.page.evaluate(
      () => document.querySelector<HTMLAudioElement>('audio[data-parley-clip]')?.duration ?? 0,
    );
    // The browser's decoder agrees with the server's metadata on the length.
    expect(Math.abs(duration * 1000 - durationMs)).toBeLessThanOrEqual(100);
    await bob.page.waitForFunction(
      () => document.querySelector('audio[data-parley-clip]') === null,
      undefined,
      {
        timeout: 10_000,
      },
    );
    expect(await bob.page.locator(`button[data-play="${id}"]`).textContent()).toBe('▶ Play');

    // The SDK call itself resolves once played; an unknown id rejects with the server's code.
    const replayed = await bob.page.evaluate(async (rid) => {
      await window.parleyDemo?.channel?.replay(rid);
      return document.querySelector('audio[data-parley-clip]') === null;
    }, id!);
    expect(replayed).toBe(true);
    const refused = await bob.page.evaluate(() =>
      window.parleyDemo?.channel?.replay('no-such-recording').then(
        () => 'played',
        (err: { code?: string }) => err.code,
      ),
    );
    expect(refused).toBe('RECORDING_NOT_FOUND');
  }, 60_000);

  it('a burst spoken while Bob was offline is marked missed once he is back', async () => {
    const sessionId = await bob.page.evaluate(() => window.parleyDemo?.client?.signaling.sessionId);
    await bob.context.setOffline(true); // reconnect attempts fail until he is back online
    await dropFromServer(srv, sessionId!);
    await bob.page.waitForFunction(() => window.parleyDemo?.client?.signaling.state === 'reconnecting');
    await aliceTalks(1_000);
    await sleep(500); // the recording is stored while Bob is still away
    await bob.context.setOffline(false);
    await bob.page.waitForFunction(
      () => window.parleyDemo?.client?.signaling.state === 'connected',
      undefined,
      {
        timeout: 15_000,
      },
    );
    await bob.page.waitForSelector('#burst-list li.burst.missed', { timeout: 10_000 });
    const rows = bob.page.locator('#burst-list li.burst');
    expect(await rows.count()).toBe(2);
    expect(await rows.first().getAttribute('data-missed')).toBe('true');
    expect(await rows.first().locator('.missed-badge').textContent()).toBe('missed');
    expect(await rows.nth(1).getAttribute('data-missed')).toBe('false');
    await bob.page.screenshot({ path: screenshotPath('demo-recordings.png') });
    const events = await bob.page.evaluate(() => window.recordingLog.events);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ speaker: 'Alice', missed: true });
  }, 60_000);

  it('with autoPlayMissed, the SDK plays a burst missed while reconnecting', async () => {
    carol = await openSdkPage(srv);
    const page = carol.page;
    await page.mouse.click(5, 5); // a user gesture: the page may play audio
    await page.evaluate(
      async (token) => {
        const parley = await window.Parley.ParleyClient.connect({ url: location.origin, token });
        const channel = await parley.joinPtt('dispatch', { autoPlayMissed: true, microphone: false });
        const log: RecordingLog = { events: [] };
        window.recordingLog = log;
        channel.on('recording', (r, { missed }) =>
          log.events.push({ id: r.id, speaker: r.speaker.name, missed }),
        );
        window.carol = { signaling: parley.signaling };
      },
      await srv.token('carol', 'Carol'),
    );
    const sessionId = await page.evaluate(() => window.carol.signaling.sessionId);
    await carol.context.setOffline(true);
    await dropFromServer(srv, sessionId!);
    await page.waitForFunction(() => window.carol.signaling.state === 'reconnecting');
    await aliceTalks(1_000);
    await sleep(500); // stored while Carol is away
    await carol.context.setOffline(false);
    // Back online: the missed burst plays by itself through the channel's audio output.
    await page.waitForFunction(
      () => {
        const el = document.querySelector<HTMLAudioElement>('audio[data-parley-clip]');
        return el !== null && el.currentTime > 0.2;
      },
      undefined,
      { timeout: 15_000 },
    );
    const events = await page.evaluate(() => window.recordingLog.events);
    expect(events).toEqual([{ id: expect.any(String) as string, speaker: 'Alice', missed: true }]);
    await page.waitForFunction(() => document.querySelector('audio[data-parley-clip]') === null, undefined, {
      timeout: 10_000,
    });
  }, 60_000);
});
