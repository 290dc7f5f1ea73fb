import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/client.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { startProc, tokenFor, type HardProc } from '../hardening/lib/proc.js';
import { reportFigures, summarize } from '../hardening/lib/stats.js';

/*
 * Issue 13, High 2, replayed at the audit's scale against a real server process with production
 * defaults and two mediasoup workers: one user opens 20 connections, and each joins ad-hoc rooms
 * and creates transports as fast as it can. Measured beside it: a legitimate user's room:join +
 * transport:create round trip, before and during the attack. test/hardening/quotas.test.ts has
 * the behaviour with small quotas; this is the same at full size, with latency.
 */

describe('RTC resource quotas at the audit’s scale (real process, defaults, 2 workers)', () => {
  let proc: HardProc;
  beforeAll(async () => {
    assertLoopbackOnly();
    proc = await startProc({ MEDIASOUP_WORKERS: '2', RATE_LIMIT_BURST: '1000', RATE_LIMIT_PER_SEC: '1000' });
  });
  afterAll(() => proc.stop());

  /** One legitimate round: join a fresh ad-hoc room, take a transport, leave. Resolves with its ms. */
  async function legitRound(c: TestClient, i: number): Promise<{ ms: number; ok: boolean }> {
    const t0 = performance.now();
    const joined = await c.request('room:join', { roomId: `legit-${i}` });
    const created = await c.request('transport:create', { roomId: `legit-${i}`, direction: 'recv' });
    const ms = performance.now() - t0;
    await c.request('room:leave', { roomId: `legit-${i}` });
    return { ms, ok: joined.type === 'room:state' && created.type === 'transport:created' };
  }

  it('20 connections of one user: at most 10 sessions, 32 transports, 8 ad-hoc rooms; a legitimate user is served', async () => {
    const legit = await TestClient.connect(proc.wsUrl, await tokenFor('legit'));
    const baseline: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await legitRound(legit, i);
      expect(r.ok).toBe(true);
      baseline.push(r.ms);
    }

    // The attack: 20 connections of one user, each 50 ad-hoc rooms × 4 transports, all at once.
    const hogToken = await tokenFor('hog');
    const opened = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = new TestClient(proc.wsUrl, [], { headers: { authorization: `Bearer ${hogToken}` } });
        await c.opened.catch(() => undefined);
        const first = await c
          .waitFor((m) => m.type === 'welcome' || m.type === 'error', 5_000)
          .catch(() => null);
        return { c, admitted: first?.type === 'welcome' };
      }),
    );
    const hogs = opened.filter((o) => o.admitted).map((o) => o.c);
    const outcomes: Record<string, number> = {};
    const count = (m: ServerMessage) => {
      const k = m.type === 'error' ? m.payload.code : m.type;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    };
    const during: number[] = [];
    let legitFailures = 0;
    let attacking = true;
    const attack = Promise.all(
      hogs.map(async (c, s) => {
        for (let r = 0; r < 50; r++) {
          const roomId = `hog-${s}-${r}`;
          const joined = await c.request('room:join', { roomId }, 10_000);
          count(joined);
          if (joined.type !== 'room:state') continue;
          const created = await Promise.all(
            Array.from({ length: 4 }, () =>
              c.request('transport:create', { roomId, direction: 'recv' }, 10_000),
            ),
          );
          created.forEach(count);
        }
      }),
    ).finally(() => (attacking = false));
    const sfuDuring: string[] = [];
    for (let i = 100; attacking || i < 130; i++) {
      const r = await legitRound(legit, i);
      if (!r.ok) legitFailures++;
      during.push(r.ms);
      const health = await proc.health();
      sfuDuring.push(String((health.body.sfu as { status?: string } | null)?.status));
    }
    await attack;
    const health = await proc.health();

    reportFigures('quotas-rtc-hog', {
      hogConnections: opened.length,
      hogSessionsAdmitted: hogs.length,
      hogOutcomes: outcomes,
      legitRounds: during.length,
      legitFailures,
      legitBaselineMs: summarize(baseline),
      legitDuringAttackMs: summarize(during),
      sfuStatusesDuring: [...new Set(sfuDuring)],
      healthAfter: health.body,
    });

    expect(hogs.length).toBe(10); // MAX_SESSIONS_PER_USER, all live: the other 10 got 4429
    expect(outcomes['transport:created']).toBe(32); // MAX_TRANSPORTS_PER_USER, over every room and session
    expect(outcomes['room:state']).toBe(8); // MAX_AD_HOC_ROOMS_PER_USER
    expect(outcomes.QUOTA_EXCEEDED).toBeGreaterThan(0);
    expect(legitFailures).toBe(0);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');
    expect(proc.fatalLines()).toEqual([]);
    for (const o of opened) o.c.ws.terminate();
    await legit.close(1000);
  });
});
