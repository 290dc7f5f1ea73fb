import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { spawnModule } from '../helpers/module-process.js';

const LOGGER = fileURLToPath(new URL('../../src/server/logger.ts', import.meta.url));

/** A node process running `code` (ESM, through tsx) with `createLogger` in scope; stdout is a pipe. */
function run(code: string) {
  const child = spawnModule(`import { createLogger } from ${JSON.stringify(LOGGER)};\n${code}`);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

const lines = (out: string) =>
  out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** The server's default logger: stdout, asynchronous, batched (logger.ts). */
describe('createLogger without a destination', () => {
  it('writes a lone line while the process runs (the batch is flushed without waiting for 4 KB or the exit)', async () => {
    const p = run(`createLogger('info').info({ n: 1 }, 'hello'); setInterval(() => {}, 1_000);`);
    try {
      await expect.poll(() => p.out(), { timeout: 20_000 }).toContain('"msg":"hello"');
      expect(lines(p.out())).toEqual([
        expect.objectContaining({ level: 30, svc: 'parley', n: 1, msg: 'hello' }),
      ]);
    } finally {
      p.child.kill(); // it runs until killed, pass or fail
      await p.exited;
    }
  });

  it('writes every line still in the batch when the process exits, in order, the last one whole', async () => {
    const p = run(`
      const log = createLogger('info');
      for (let i = 0; i < 1_000; i++) log.info({ i }, 'filler');
      log.fatal({ code: 'BAD_CONFIG' }, 'last words');
      process.exit(3);
    `);
    expect(await p.exited).toBe(3);
    await new Promise((r) => setImmediate(r));
    const all = lines(p.out());
    expect(all).toHaveLength(1_001);
    expect(all.slice(0, -1).map((l) => l.i)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(all[1_000]).toMatchObject({ level: 60, code: 'BAD_CONFIG', msg: 'last words' });
  }, 30_000);

  it('writes every line at process.exit when stdout is a non-blocking pipe fuller than the reader has emptied (EAGAIN)', async () => {
    const p = run(`
      process.stdout; // fd 1 becomes a libuv pipe handle, non-blocking: a full pipe answers EAGAIN
      const log = createLogger('info');
      const pad = 'x'.repeat(100);
      for (let i = 0; i < 10_000; i++) log.info({ i, pad }, 'filler'); // ~1.5 MB, no fatal() flush
      process.exit(4);
    `);
    expect(await p.exited).toBe(4);
    if (!p.child.stdout.readableEnded) await once(p.child.stdout, 'end');
    expect(lines(p.out()).map((l) => l.i)).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
  }, 30_000);

  it('still redacts', async () => {
    const p = run(`
      createLogger('info').info({ token: 'secret-jwt', nested: { sdp: 'v=0' }, ok: 'kept' }, 'r');
      process.exit(0);
    `);
    await p.exited;
    await new Promise((r) => setImmediate(r));
    expect(lines(p.out())[0]).toMatchObject({
      token: '[redacted]',
      nested: { sdp: '[redacted]' },
      ok: 'kept',
    });
  }, 30_000);
});
