import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import {
  joinChannel,
  packetsIn,
  pressButton,
  releaseButton,
  signIn,
  talkState,
  text,
} from './demo-driver.js';
import { openBrowser, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

const manifest = {
  stunUrls: [],
  allowAdHocRooms: false,
  channels: [{ id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 50 }],
};

describe('push-to-talk between three Chromium pages on the SFU', () => {
  let srv: E2eServer;
  let alice: BrowserPage;
  let bob: BrowserPage;
  let carol: BrowserPage;

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ manifest, devTokens: true });
    [alice, bob, carol] = await Promise.all([openBrowser(), openBrowser(), openBrowser()]);
    await Promise.all([
      signIn(alice.page, srv, 'Alice'),
      signIn(bob.page, srv, 'Bob'),
      signIn(carol.page, srv, 'Carol'),
    ]);
    for (const p of [alice, bob, carol]) await joinChannel(p.page, 'dispatch');
  });

  afterAll(async () => {
    const errors = [alice, bob, carol].flatMap((b) => b?.errors ?? []);
    await Promise.all([alice?.close(), bob?.close(), carol?.close()]);
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('only the floor holder is heard; a second press is denied with their name; the floor then passes on', async () => {
    for (const p of [alice, bob, carol]) {
      await p.page.waitForFunction(() => document.querySelectorAll('#members li').length === 3);
    }

    // ---- Alice holds the space bar ----
    const bob0 = await packetsIn(bob.page);
    const carol0 = await packetsIn(carol.page);
    const alice0 = await packetsIn(alice.page);
    const pressedAt = Date.now();
    await alice.page.keyboard.down('Space');
    await alice.page.waitForFunction(() => window.parleyDemo?.channel?.talkState === 'talking');
    const grantMs = Date.now() - pressedAt;
    // First audio at Bob: from the key press to his floor consumer's first new packet.
    await waitUntil(async () => (await packetsIn(bob.page)) > bob0, 'Bob to receive Alice', 5_000, 10);
    const firstAudioMs = Date.now() - pressedAt;
    for (const p of [bob, carol]) {
      await p.page.waitForFunction(() =>
        document.getElementById('speaker-banner')?.textContent?.startsWith('Alice is speaking'),
      );
    }
    expect(await alice.page.locator('#speaker-banner').textContent()).toMatch(/^You are talking/);
    expect(await bob.page.locator('#members li.speaking .name').textContent()).toContain('Alice');

    // ---- Bob presses the button at the same time: denied, with Alice's name ----
    await pressButton(bob.page);
    await bob.page.waitForFunction(
      () => document.getElementById('ptt-status')?.textContent === 'Alice is speaking',
    );
    expect(await text(bob.page, '#ptt-status')).toBe('Alice is speaking');
    expect(await talkState(bob.page)).toBe('idle');
    await releaseButton(bob.page);

    // Plenty of audio (Opus: 50 packets/s), from Alice only. The deadline only bounds the wait.
    const heard = async () =>
      (await packetsIn(bob.page)) - bob0 > 60 && (await packetsIn(carol.page)) - carol0 > 60;
    await waitUntil(heard, 'Bob and Carol receive 60 packets from Alice', 10_000, 50);
    const alice1 = await packetsIn(alice.page);
    // The speaker does not hear herself: her floor consumer is paused while she holds the floor.
    expect(alice1 - alice0).toBeLessThan(5);

    // ---- Alice releases: the floor is clear and no more packets arrive ----
    await alice.page.keyboard.up('Space');
    for (const p of [alice, bob, carol]) {
      await p.page.waitForFunction(
        () => document.getElementById('speaker-banner')?.textContent === 'Channel is clear',
      );
    }
    await sleep(300); // packets already in flight
    const bob2 = await packetsIn(bob.page);
    const carol2 = await packetsIn(carol.page);
    await sleep(1_500); // a window in which no packet may arrive
    const bob3 = await packetsIn(bob.page);
    const carol3 = await packetsIn(carol.page);
    expect(bob3 - bob2).toBe(0);
    expect(carol3 - carol2).toBe(0);

    // ---- now Bob can talk, and Alice and Carol hear him ----
    const aliceB0 = await packetsIn(alice.page);
    const carolB0 = await packetsIn(carol.page);
    await pressButton(bob.page);
    await bob.page.waitForFunction(() => window.parleyDemo?.channel?.talkState === 'talking');
    await alice.page.waitForFunction(() =>
      document.getElementById('speaker-banner')?.textContent?.startsWith('Bob is speaking'),
    );
    await waitUntil(
      async () =>
        (await packetsIn(alice.page)) - aliceB0 > 30 && (await packetsIn(carol.page)) - carolB0 > 30,
      'Alice and Carol receive 30 packets from Bob',
      10_000,
      50,
    );
    await releaseButton(bob.page);
    await bob.page.waitForFunction(() => window.parleyDemo?.channel?.talkState === 'idle');

    console.info(
      `ptt: grant ${grantMs} ms after the key press; first packet at Bob ${firstAudioMs} ms; ` +
        `while Alice talked: Alice (speaker) +${alice1 - alice0}; ` +
        `1.5 s after release: Bob +${bob3 - bob2}, Carol +${carol3 - carol2}`,
    );
  });
});
