import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Call, CallEndReason, ParleyClient } from '../../src/client/index.js';
import { turnCredentials } from '../../src/server/turn/turn-credentials.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { PortInUseError, startWithFreePort } from '../helpers/ports.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { openSdkPage, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

const TURN_SECRET = 'e2e-turn-secret-0123456789';

interface RelayPage {
  parley: ParleyClient;
  call: Call | null;
  ended: CallEndReason[];
  everConnected: boolean;
}

declare global {
  interface Window {
    relayTest: RelayPage;
  }
}

/**
 * A real coturn in TURN REST mode (use-auth-secret), on loopback only. turnserver cannot bind port
 * 0 and report it, so the port is probed and the start retried on a fresh one if the bind loses
 * the race (coturn then logs errno=98 and keeps retrying, so its output is what tells).
 */
function startCoturn(): Promise<{ port: number; output: () => string; stop: () => Promise<void> }> {
  return startWithFreePort((port) => startCoturnOn(port));
}

async function startCoturnOn(port: number) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-coturn-'));
  // prettier-ignore
  const args = [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    '--use-auth-secret', `--static-auth-secret=${TURN_SECRET}`, '--realm=parley', '--allow-loopback-peers',
    '--no-tls', '--no-dtls', '--no-cli', '--pidfile', join(dir, 'turnserver.pid'), '--userdb', join(dir, 'db'),
    '--log-file=stdout',
  ];
  const proc: ChildProcess = spawn(process.env.TURNSERVER_BIN ?? 'turnserver', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      // A grace period for coturn's own shutdown, then no more waiting.
      await Promise.race([exited, sleep(3_000).then(() => proc.kill('SIGKILL'))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const bindFailed = () => /errno=98|address already in use/i.test(out);
  try {
    // Ready once it accepts TCP on the listening port (it serves UDP and TCP there).
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          if (proc.exitCode !== null) throw new Error(`turnserver exited:\n${out}`);
          if (bindFailed()) throw new PortInUseError(`turnserver could not bind ${port}`);
          const sock = tcpConnect(port, '127.0.0.1');
          sock.once('connect', () => {
            sock.destroy();
            resolve(true);
          });
          sock.once('error', () => resolve(false));
        }),
      'coturn to listen',
      5_000,
      50,
    );
    if (bindFailed()) throw new PortInUseError(`turnserver could not bind ${port}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, output: () => out, stop };
}

/** Connects the SDK in the page with relay-only calls, with the given ICE servers (default: from the server). */
async function connectPage(
  b: BrowserPage,
  token: string,
  iceServers?: RTCIceServer[],
  callConnectTimeoutMs?: number,
) {
  await b.page.evaluate(
    async ({ token, iceServers, callConnectTimeoutMs }) => {
      const t: RelayPage = {
        parley: null as unknown as ParleyClient,
        call: null,
        ended: [],
        everConnected: false,
      };
      const track = (call: Call) => {
        t.call = call;
        call.on('ended', ({ reason }) => t.ended.push(reason));
        call.on('stateChanged', (s) => {
          if (s === 'active') t.everConnected = true;
        });
      };
      t.parley = await window.Parley.ParleyClient.connect({
        url: location.origin,
        token,
        calls: {
          configuration: { iceTransportPolicy: 'relay' },
          ...(iceServers ? { iceServers } : {}),
          ...(callConnectTimeoutMs ? { callConnectTimeoutMs } : {}),
        },
      });
      // A call rings users who share a room with the caller (CALL_POLICY=shared-room, the default):
      // both pages sit in the lobby, as demo users call each other from a channel's member list.
      await t.parley.signaling.joinRoom('lobby');
      t.parley.calls.on('incoming', (call) => {
        track(call);
        void call.accept();
      });
      window.relayTest = t;
      (window as unknown as { trackCall: (c: Call) => void }).trackCall = track;
    },
    { token, iceServers, callConnectTimeoutMs },
  );
}

/** Gathers candidates with relay-only policy and the given ICE servers. */
function gather(b: BrowserPage, iceServers: RTCIceServer[]) {
  return b.page.evaluate(async (iceServers) => {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    const candidates: string[] = [];
    const errors: number[] = [];
    pc.onicecandidate = (e) => {
      if (e.candidate) candidates.push(e.candidate.type ?? 'unknown');
    };
    pc.onicecandidateerror = (e) => errors.push(e.errorCode);
    pc.addTransceiver('audio');
    await pc.setLocalDescription();
    await new Promise<void>((resolve) => {
      const done = () => pc.iceGatheringState === 'complete' && resolve();
      pc.onicegatheringstatechange = done;
      setTimeout(resolve, 8_000);
      done();
    });
    pc.close();
    return { candidates, errors };
  }, iceServers);
}

describe('relay-only calls through a real coturn', () => {
  let srv: E2eServer;
  let turn: Awaited<ReturnType<typeof startCoturn>>;
  let alice: BrowserPage;
  let bob: BrowserPage;
  let uris: string[];

  beforeAll(async () => {
    assertLoopbackOnly();
    turn = await startCoturn();
    uris = [`turn:127.0.0.1:${turn.port}?transport=udp`];
    srv = await startE2eServer({
      env: { MEDIASOUP_WORKERS: '0', TURN_SECRET, TURN_URIS: uris.join(','), TURN_TTL: '600' },
      manifest: { stunUrls: [] },
    });
    [alice, bob] = await Promise.all([openSdkPage(srv), openSdkPage(srv)]);
    await connectPage(alice, await srv.token('alice', 'Alice'));
    await connectPage(bob, await srv.token('bob', 'Bob'));
  });

  afterAll(async () => {
    const errors = [...(alice?.errors ?? []), ...(bob?.errors ?? [])];
    await Promise.all([alice?.close(), bob?.close()]);
    await srv?.close();
    await turn?.stop();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('with iceTransportPolicy relay, the call connects and the selected candidate pair is relay', async () => {
    await alice.page.evaluate(async () => {
      const call = await window.relayTest.parley.calls.call('bob', { name: 'Bob' });
      (window as unknown as { trackCall: (c: Call) => void }).trackCall(call);
    });
    const t0 = Date.now();
    try {
      await Promise.all(
        [alice, bob].map((p) =>
          p.page.waitForFunction(() => window.relayTest.call?.state === 'active', undefined, {
            timeout: 10_000,
          }),
        ),
      );
    } catch (err) {
      throw new Error(`relay call did not connect: ${String(err)}\ncoturn:\n${turn.output().slice(-3_000)}`);
    }
    const setupMs = Date.now() - t0;
    const stats = () =>
      Promise.all([alice, bob].map((p) => p.page.evaluate(() => window.relayTest.call!.getAudioStats())));
    const s0 = await stats();
    let s1 = s0;
    // 30 packets each way through the relay; the deadline only bounds the wait.
    await waitUntil(
      async () => {
        s1 = await stats();
        return s1.every((s, i) => s!.packetsReceived - s0[i]!.packetsReceived > 30);
      },
      'audio both ways through coturn',
      10_000,
      50,
    );
    for (const s of s1) {
      expect(s?.selectedCandidatePair).toMatchObject({ localType: 'relay', relayProtocol: 'udp' });
    }
    console.info(
      `turn: relay call active in ${setupMs} ms; pairs ${JSON.stringify(s1.map((s) => s?.selectedCandidatePair))}; ` +
        `packets in: ${s1.map((s, i) => s!.packetsReceived - s0[i]!.packetsReceived).join(', ')}`,
    );
    await alice.page.evaluate(() => window.relayTest.call?.hangup());
    await bob.page.waitForFunction(() => window.relayTest.ended.length > 0);
  });

  it('an expired TURN credential is refused: no relay candidate (401), and a relay-only call fails', async () => {
    const valid = turnCredentials(TURN_SECRET, 'mallory', 600, uris);
    // Signed with the right secret, but its expiry (in the username) is an hour ago.
    const expired = turnCredentials(TURN_SECRET, 'mallory', 60, uris, Date.now() - 3_600_000);
    const toServers = (c: typeof valid): RTCIceServer[] => [
      { urls: c.uris, username: c.username, credential: c.password },
    ];

    const good = await gather(alice, toServers(valid));
    expect(good.candidates).toContain('relay');
    const bad = await gather(alice, toServers(expired));
    expect(bad.candidates).toEqual([]);
    expect(bad.errors).toContain(401);

    // The same through the SDK: a caller holding the expired credential cannot reach Bob.
    const mallory = await openSdkPage(srv);
    try {
      await connectPage(mallory, await srv.token('mallory', 'Mallory'), toServers(expired), 4_000);
      await mallory.page.evaluate(async () => {
        const call = await window.relayTest.parley.calls.call('bob', { name: 'Bob' });
        (window as unknown as { trackCall: (c: Call) => void }).trackCall(call);
      });
      await mallory.page.waitForFunction(() => window.relayTest.ended.length > 0, undefined, {
        timeout: 15_000,
      });
      const result = await mallory.page.evaluate(() => ({
        ended: window.relayTest.ended,
        everConnected: window.relayTest.everConnected,
      }));
      expect(result).toEqual({ ended: ['failed'], everConnected: false });
    } finally {
      await mallory.close();
    }
  });
});
