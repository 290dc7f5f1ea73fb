import type { Page } from 'playwright-core';
import type { E2eServer } from './harness.js';

/** Drives the demo page like a user: sign in by name (development token), join a channel. */
export async function signIn(page: Page, srv: E2eServer, name: string): Promise<void> {
  await page.goto(`${srv.httpUrl}/`);
  await page.fill('#signin-name', name);
  await page.press('#signin-name', 'Enter');
  await page.waitForSelector('#conn-state[data-state="connected"]');
}

export async function joinChannel(page: Page, roomId: string): Promise<void> {
  await page.click(`#join-${roomId}`);
  await page.waitForSelector('#ptt-button');
  await page.waitForFunction(() => window.parleyDemo?.channel?.mediaState === 'connected', undefined, {
    timeout: 10_000,
  });
}

/** Packets received on the channel's floor consumer (inbound-rtp). */
export function packetsIn(page: Page): Promise<number> {
  return page.evaluate(
    async () => (await window.parleyDemo?.channel?.getStats())?.inbound?.packetsReceived ?? 0,
  );
}

export function talkState(page: Page): Promise<string | undefined> {
  return page.evaluate(() => window.parleyDemo?.channel?.talkState);
}

/** Presses (and holds) the big button with the mouse, as a user would. */
export async function pressButton(page: Page): Promise<void> {
  const box = await page.locator('#ptt-button').boundingBox();
  if (!box) throw new Error('no PTT button on the page');
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
}

export async function releaseButton(page: Page): Promise<void> {
  await page.mouse.up();
}

export async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? '';
}
