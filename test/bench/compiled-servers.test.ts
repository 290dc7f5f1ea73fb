/**
 * The bench measures its servers as `npm start` runs Parley: their `tsc` output under plain node
 * (bench/lib/compiled.ts), not their TypeScript through tsx. These tests hold that to what it
 * claims: the compiled Parley and the compiled mandated relay are the real servers (they
 * authenticate, validate and relay with the sender set by the server), they run without tsx, and a
 * checkout that cannot be compiled, or a script that is not an entry point, fails with a clear error.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { openClient } from '../../bench/lib/clients.js';
import { BUILD_DIR, compiledScript } from '../../bench/lib/compiled.js';
import { frameFor, type Protocol } from '../../bench/lib/payloads.js';
import {
  RELAY_BENCH_ENV,
  ROOT,
  startParley,
  startServerProc,
  type ServerProc,
} from '../../bench/lib/servers.js';
import { tokenFor } from '../../bench/lib/tokens.js';

const servers: ServerProc[] = [];
const sockets: WebSocket[] = [];
const temps: string[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** The next frame `ws` receives, parsed. */
function nextFrame(ws: WebSocket): Promise<{ type: string; payload: Record<string, unknown> }> {
  return new Promise((resolve) =>
    ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as never)),
  );
}

function commandLine(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

async function relayAliceToBob(s: ServerProc, protocol: Protocol): Promise<Record<string, unknown>> {
  const open = async (id: string) => {
    const ws = await openClient({
      protocol,
      url: s.url('/ws'),
      id,
      ...(protocol === 'parley' ? { token: await tokenFor(id) } : {}),
    });
    sockets.push(ws);
    return ws;
  };
  const alice = await open('alice');
  const bob = await open('bob');
  const got = nextFrame(bob);
  // An offer: it opens the call (Parley drops candidates for a call it does not know).
  alice.send(frameFor(protocol, 'sdp', 'bob', 3));
  const frame = await got;
  expect(frame.type).toBe('call:offer');
  // An invalid frame is refused with the protocol's error, compiled or not.
  const refused = nextFrame(alice);
  alice.send(JSON.stringify({ type: 'call:offer', payload: { recipientId: 'bob' } }));
  const err = await refused;
  expect(err.type).toBe('error');
  expect(err.payload.code).toBe('INVALID_MESSAGE');
  return frame.payload;
}

describe('the bench’s compiled servers', () => {
  // One compile of this checkout for the file (tsc, no type check: seconds, more on a busy machine).
  beforeAll(() => {
    compiledScript(ROOT, 'src/server/main.ts');
  }, 180_000);

  it('runs Parley from its tsc output, without tsx, and it authenticates, validates and relays', async () => {
    const s = await startParley('parley-compiled-test', RELAY_BENCH_ENV, {
      compiled: true,
      timeoutMs: 60_000,
    });
    servers.push(s);
    const cmd = commandLine(s.pid);
    expect(cmd).toContain(join(ROOT, BUILD_DIR, 'src/server/main.js'));
    expect(cmd).not.toMatch(/\btsx\b/);
    const payload = await relayAliceToBob(s, 'parley');
    expect(payload.senderId).toBe('alice');
    expect(payload.callId).toBe('call-3');
    expect(payload).not.toHaveProperty('recipientId');
  });

  it('runs the mandated relay from its tsc output with the same behaviour as from source', async () => {
    const env = { ...RELAY_BENCH_ENV };
    const compiled = await startServerProc('mandated-compiled-test', 'bench/baselines/mandated-relay.ts', {
      compiled: true,
      env,
      timeoutMs: 60_000,
    });
    servers.push(compiled);
    expect(commandLine(compiled.pid)).not.toMatch(/\btsx\b/);
    const fromBuild = await relayAliceToBob(compiled, 'mandated');
    const source = await startServerProc('mandated-source-test', 'bench/baselines/mandated-relay.ts', {
      compiled: false,
      env,
      timeoutMs: 60_000,
    });
    servers.push(source);
    expect(commandLine(source.pid)).toMatch(/\btsx\b/);
    const fromSource = await relayAliceToBob(source, 'mandated');
    expect(fromBuild).toEqual(fromSource);
  });

  it('refuses a script that is not one of the entry points it compiles', () => {
    expect(() => compiledScript(ROOT, 'bench/run.ts')).toThrow(/bench\/run\.ts was not compiled/);
  });

  it('fails with the compiler’s output for a checkout that does not compile', () => {
    const root = mkdtempSync(join(tmpdir(), 'parley-bench-build-'));
    temps.push(root);
    // No TypeScript in this checkout's node_modules: tsc cannot even start.
    writeFileSync(join(root, 'tsconfig.json'), '{}');
    expect(() => compiledScript(root, 'src/server/main.ts')).toThrow(/compiling .* for the bench failed/);
  });
});
