import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, logLinesDropped } from '../../src/server/logger.js';
import { Metrics } from '../../src/server/metrics/metrics.js';
import { LogStream, fdSink, type LogSink, type LogStreamOptions } from '../../src/server/log-stream.js';
import { FakeClock, settle } from '../helpers/fake-clock.js';
import { spawnModule } from '../helpers/module-process.js';

type Answer = number | 'EAGAIN' | 'EPIPE';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

/**
 * A sink that keeps the bytes it takes and answers each call as the test says: how many bytes it
 * takes, or an error code. Asynchronous answers come on a later turn, as `fs.write`'s do. Used only
 * where a real fd cannot be made to answer that way on demand (short writes, EAGAIN, a stuck reader).
 */
class ScriptedSink implements LogSink {
  readonly taken: Buffer[] = [];
  writes = 0;
  syncWrites = 0;

  constructor(
    readonly answer: (buf: Buffer) => Answer = (buf) => buf.length,
    readonly answerSync: (buf: Buffer) => Answer = (buf) => buf.length,
  ) {}

  write(buf: Buffer, cb: (err: NodeJS.ErrnoException | null, written: number) => void): void {
    this.writes++;
    const a = this.answer(buf);
    if (typeof a === 'number') this.taken.push(Buffer.from(buf.subarray(0, a)));
    setImmediate(() => (typeof a === 'number' ? cb(null, a) : cb(errno(a), 0)));
  }

  writeSync(buf: Buffer): number {
    this.syncWrites++;
    const a = this.answerSync(buf);
    if (typeof a !== 'number') throw errno(a);
    this.taken.push(Buffer.from(buf.subarray(0, a)));
    return a;
  }

  get text(): string {
    return Buffer.concat(this.taken).toString('utf8');
  }
}

// Multi-byte UTF-8 of every width: 2 (ï, é), 3 (✓, €, 中), 4 (😀, 👍🏽).
const WORDS = ['plain', 'naïve café', '✓ and €', '😀 👍🏽', '中文 日本語', 'é✓😀中'];
const line = (i: number) => `{"level":30,"i":${i},"msg":"${WORDS[i % WORDS.length]}"}\n`;
const lines = (from: number, n: number) => Array.from({ length: n }, (_, k) => line(from + k));
/** Consecutive lines from `from` adding up to at least `bytes`. */
function linesOf(from: number, bytes: number): string[] {
  const out: string[] = [];
  for (let total = 0; total < bytes; total += Buffer.byteLength(out[out.length - 1]))
    out.push(line(from + out.length));
  return out;
}
const flushed = (s: LogStream) => new Promise<Error | undefined>((resolve) => s.flush((err) => resolve(err)));

const streams: LogStream[] = [];
/** A stream closed after the test, with a sleep that does not block (tests never wait on real time). */
function stream(opts: LogStreamOptions): LogStream {
  const s = new LogStream({ sleepSync: () => {}, ...opts });
  streams.push(s);
  return s;
}
afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

describe('LogStream: batches', () => {
  it('writes every line, multi-byte ones included, byte for byte and in order, in far fewer writes than lines (a real file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-log-'));
    const path = join(dir, 'out.log');
    const fd = openSync(path, 'w');
    try {
      const real = fdSink(fd);
      const sizes: number[] = [];
      // The real fd's sink, counted. flushMs out of reach: only full batches and the final flush write.
      const s = stream({
        sink: {
          write: (buf, cb) => (sizes.push(buf.length), real.write(buf, cb)),
          writeSync: (buf) => real.writeSync(buf),
        },
        flushMs: 60_000,
      });
      const all = lines(0, 5_000);
      // 50 lines a turn: lines keep coming while a write runs, and wait for the next one.
      for (let k = 0; k < all.length; k += 50) {
        for (const l of all.slice(k, k + 50)) s.write(l);
        await settle();
      }
      expect(await flushed(s)).toBeUndefined();
      expect(readFileSync(path).equals(Buffer.from(all.join(''), 'utf8'))).toBe(true);
      expect(sizes.length).toBeLessThan(all.length / 10);
      expect(sizes.slice(0, -1).every((n) => n >= 4_096)).toBe(true);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });

  it('writes a lone line within flushMs, a full batch at once, and runs no timer when idle', async () => {
    const clock = new FakeClock();
    const sink = new ScriptedSink();
    const s = stream({ sink, clock });
    expect(clock.pending).toBe(0);
    s.write(line(0));
    await clock.advance(249);
    expect(sink.writes).toBe(0);
    await clock.advance(1);
    expect(sink.text).toBe(line(0));
    expect(clock.pending).toBe(0);

    const batch = linesOf(1, 4_096);
    for (const l of batch) s.write(l);
    await settle();
    expect(sink.writes).toBe(2); // at once, not after the timer
    expect(sink.text).toBe([line(0), ...batch].join(''));
    await clock.advance(10_000);
    expect(clock.pending).toBe(0);
    expect(sink.writes).toBe(2);
  });

  it('does not keep the process alive for its timer', () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const s = stream({ sink: new ScriptedSink() });
    s.write(line(0));
    expect(s.bufferedBytes).toBeGreaterThan(0); // waiting for its timer, which is unref'd
    expect(timeouts()).toBe(before);
  });

  it('flush(cb) writes a part batch at once and calls back once it is written', async () => {
    const clock = new FakeClock();
    const sink = new ScriptedSink();
    const s = stream({ sink, clock });
    for (const l of lines(0, 3)) s.write(l);
    expect(await flushed(s)).toBeUndefined();
    expect(sink.text).toBe(lines(0, 3).join(''));
  });

  it("is written synchronously by pino's fatal(), before it returns", () => {
    const sink = new ScriptedSink();
    const log = createLogger('info', stream({ sink, clock: new FakeClock() }));
    log.info({ n: 1 }, 'one');
    log.info({ n: 2 }, 'two');
    expect(sink.taken).toEqual([]);
    log.fatal({ n: 3 }, 'last words');
    expect(sink.syncWrites).toBe(1);
    const out = sink.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out.map((l) => [l.level, l.n])).toEqual([
      [30, 1],
      [30, 2],
      [60, 3],
    ]);
  });

  it('writes a backlog in pieces of whole lines, at most maxWriteBytes each', async () => {
    const clock = new FakeClock();
    let accepting = false;
    const sizes: number[] = [];
    const sink = new ScriptedSink((buf) => (accepting ? (sizes.push(buf.length), buf.length) : 'EAGAIN'));
    const s = stream({ sink, clock, maxWriteBytes: 1_000 });
    const all = lines(0, 500);
    for (const l of all) s.write(l);
    await settle();
    accepting = true;
    await clock.advance(100);
    expect(await flushed(s)).toBeUndefined();
    expect(sink.text).toBe(all.join(''));
    // The first write was the refused batch; after it, pieces.
    expect(sizes.slice(1).every((n) => n <= 1_000)).toBe(true);
    expect(sizes.length).toBeGreaterThan(10);
  });
});

describe('LogStream: short writes and EAGAIN', () => {
  it('continues a short write with the rest of the same bytes, even inside a character', async () => {
    const clock = new FakeClock();
    const sink = new ScriptedSink((buf) => Math.min(3, buf.length));
    const s = stream({ sink, clock, batchBytes: 64 });
    const first = lines(0, 12);
    for (const l of first) s.write(l);
    // More lines come while the batch goes out three bytes at a time.
    const more = lines(12, 12);
    for (const l of more) {
      s.write(l);
      await settle();
    }
    expect(await flushed(s)).toBeUndefined();
    expect(Buffer.concat(sink.taken).equals(Buffer.from([...first, ...more].join(''), 'utf8'))).toBe(true);
    // The splits did fall inside characters: some pieces are not valid UTF-8 on their own.
    expect(sink.taken.some((b) => b.toString('utf8').includes('\uFFFD'))).toBe(true);
  });

  it('retries EAGAIN on a timer, never in a loop: nothing lost, nothing twice, order kept', async () => {
    const clock = new FakeClock();
    let refusals = 2;
    const sink = new ScriptedSink((buf) => (refusals-- > 0 ? 'EAGAIN' : buf.length));
    const s = stream({ sink, clock });
    const batch = linesOf(0, 4_096);
    for (const l of batch) s.write(l);
    await settle();
    await settle();
    expect(sink.writes).toBe(1); // refused, and not tried again until the clock moves
    const during = lines(batch.length, 5);
    for (const l of during) s.write(l);
    await clock.advance(99);
    expect(sink.writes).toBe(1);
    await clock.advance(1);
    expect(sink.writes).toBe(2); // refused again
    await clock.advance(100);
    expect(sink.writes).toBe(3); // taken
    expect(await flushed(s)).toBeUndefined();
    expect(sink.text).toBe([...batch, ...during].join(''));
  });

  it('a synchronous flush writes the refused bytes first, then the rest, sleeping briefly on EAGAIN', async () => {
    const clock = new FakeClock();
    let syncRefusals = 2;
    const sleeps: number[] = [];
    const sink = new ScriptedSink(
      () => 'EAGAIN',
      (buf) => (syncRefusals-- > 0 ? 'EAGAIN' : buf.length),
    );
    const s = stream({ sink, clock, sleepSync: (ms) => sleeps.push(ms) });
    const batch = linesOf(0, 4_096);
    for (const l of batch) s.write(l);
    await settle(); // refused: held for a retry
    const rest = lines(batch.length, 3);
    for (const l of rest) s.write(l);
    s.flushSync();
    expect(sink.text).toBe([...batch, ...rest].join(''));
    expect(sleeps).toEqual([10, 10]);
    expect(s.bufferedBytes).toBe(0);
    await clock.advance(1_000); // the retry was cancelled: nothing is written twice
    expect(sink.text).toBe([...batch, ...rest].join(''));
  });

  it('gives up a synchronous flush when the reader takes nothing for syncGiveUpMs, counts the lines, and says so when it can write again', () => {
    let state: 'some' | 'stuck' | 'open' = 'some';
    const sleeps: number[] = [];
    const sink = new ScriptedSink(undefined, (buf) => {
      if (state === 'some') return ((state = 'stuck'), 10); // ten bytes, in the middle of the first line
      return state === 'stuck' ? 'EAGAIN' : buf.length;
    });
    const s = stream({ sink, clock: new FakeClock(), sleepSync: (ms) => sleeps.push(ms) });
    for (const l of lines(0, 3)) s.write(l);
    s.flushSync();
    expect(sleeps).toHaveLength(100); // 1 s of 10 ms sleeps, then no more
    expect(s.droppedLines).toBe(3);
    expect(s.bufferedBytes).toBe(0);

    state = 'open';
    s.write(line(99));
    s.flushSync();
    const [cut, notice, next, end] = sink.text.split('\n');
    expect(cut).toBe(line(0).slice(0, 10)); // the broken line is ended, not glued to the next one
    expect(JSON.parse(notice)).toMatchObject({ level: 40, msg: 'log lines dropped', dropped: 3 });
    expect(`${next}\n`).toBe(line(99));
    expect(end).toBe('');
  });
});

describe('LogStream: a stuck or vanished reader', () => {
  it('holds at most maxBufferedBytes, counts what it drops, and says so after the held lines once writes go through', async () => {
    const clock = new FakeClock();
    let stuck = true;
    const sink = new ScriptedSink((buf) => (stuck ? 'EAGAIN' : buf.length));
    const s = stream({ sink, clock, maxBufferedBytes: 20_000 });
    const sent = lines(0, 1_000); // ~45 KB
    let peak = 0;
    for (const [i, l] of sent.entries()) {
      s.write(l);
      peak = Math.max(peak, s.bufferedBytes);
      if (i % 50 === 0) await settle();
    }
    expect(peak).toBeLessThanOrEqual(20_000);
    expect(s.bufferedBytes).toBeGreaterThan(20_000 - 100);
    const kept = sent.length - s.droppedLines;
    expect(s.droppedLines).toBeGreaterThan(0);

    await clock.advance(500); // still stuck: tried again every 100 ms, not in a loop
    expect(sink.writes).toBeLessThanOrEqual(7);
    // Dropped too, though it would fit: the gap stays one gap, marked by one line.
    const room = 20_000 - s.bufferedBytes;
    expect(room).toBeGreaterThan(0);
    s.write(`${'x'.repeat(room - 1)}\n`);
    s.write(line(1_000));
    const dropped = s.droppedLines;
    expect(dropped).toBe(sent.length - kept + 2);

    stuck = false;
    await clock.advance(100);
    s.write(line(1_001));
    expect(await flushed(s)).toBeUndefined();
    const out = sink.text.split('\n').filter(Boolean);
    expect(out).toHaveLength(kept + 2);
    expect(out.slice(0, kept)).toEqual(sent.slice(0, kept).map((l) => l.trimEnd()));
    expect(JSON.parse(out[kept])).toMatchObject({ level: 40, msg: 'log lines dropped', dropped });
    expect(out[kept + 1]).toBe(line(1_001).trimEnd());
    expect(s.bufferedBytes).toBe(0);
  });

  it('stops for good on EPIPE (a real pipe whose reader closed): nothing thrown, nothing held, every later line counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-log-'));
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', [path]);
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const fd = openSync(path, 'w');
    closeSync(reader);
    try {
      const clock = new FakeClock();
      const s = stream({ fd, clock });
      for (const l of lines(0, 200)) s.write(l); // over 4 KB: a write starts, and fails
      expect((await flushed(s)) as NodeJS.ErrnoException).toMatchObject({ code: 'EPIPE' });
      expect(s.error?.code).toBe('EPIPE');
      expect(s.droppedLines).toBe(200);
      expect(s.bufferedBytes).toBe(0);
      for (const l of lines(200, 1_000)) s.write(l);
      expect(s.droppedLines).toBe(1_200);
      expect(s.bufferedBytes).toBe(0);
      expect(clock.pending).toBe(0);
      expect(() => s.flushSync()).not.toThrow();
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });

  it('a process whose stdout reader went away keeps running and logging, holding nothing', async () => {
    const src = (f: string) =>
      JSON.stringify(fileURLToPath(new URL(`../../src/server/${f}`, import.meta.url)));
    const child = spawnModule(
      `import { createLogger } from ${src('logger.ts')};
         import { LogStream } from ${src('log-stream.ts')};
         const stream = new LogStream();
         const log = createLogger('info', stream);
         process.stdin.once('data', async () => {
           for (let turn = 0; turn < 100; turn++) {
             for (let i = 0; i < 200; i++) log.info({ turn, i }, 'filler');
             await new Promise((r) => setImmediate(r));
           }
           process.stderr.write(JSON.stringify({
             dropped: stream.droppedLines, buffered: stream.bufferedBytes, error: stream.error?.code,
           }) + '\\n');
           process.exit(7);
         });`,
    );
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout.destroy(); // the log reader goes away before the first line
    child.stdin.end('go\n');
    expect(await exited).toBe(7);
    await expect.poll(() => err).toContain('\n');
    expect(JSON.parse(err)).toEqual({ dropped: 20_000, buffered: 0, error: 'EPIPE' });
  }, 30_000);
});

describe('LogStream: lifecycle', () => {
  it('one exit listener serves any number of streams, and none is left once they are closed', () => {
    const base = process.listenerCount('exit');
    const many = Array.from({ length: 100 }, () => new LogStream({ sink: new ScriptedSink() }));
    expect(process.listenerCount('exit')).toBeLessThanOrEqual(base + 1);
    for (const s of many) s.close();
    expect(process.listenerCount('exit')).toBe(base);
  });

  it('close() writes what it holds at once, is idempotent, and counts later lines as dropped', () => {
    const clock = new FakeClock();
    const sink = new ScriptedSink();
    const s = new LogStream({ sink, clock });
    for (const l of lines(0, 3)) s.write(l);
    s.close();
    s.close();
    s.close();
    expect(sink.text).toBe(lines(0, 3).join(''));
    expect(sink.syncWrites).toBe(1);
    expect(clock.pending).toBe(0);
    s.write(line(3));
    expect(s.droppedLines).toBe(1);
    expect(sink.writes + sink.syncWrites).toBe(1);
  });
});

describe('LogStream: the dropped count on /metrics', () => {
  it('a logger over a stream whose reader is gone reports every dropped line as parley_log_lines_dropped_total', async () => {
    const stream = new LogStream({ sink: new ScriptedSink(() => 'EPIPE') });
    const log = createLogger('info', stream);
    const metrics = new Metrics({ droppedLogLines: () => logLinesDropped(log) });
    for (let i = 0; i < 3; i++) log.info({ i }, 'before the failed write');
    await new Promise<void>((resolve) => stream.flush(() => resolve()));
    for (let i = 0; i < 4; i++) log.info({ i }, 'after it');
    expect(stream.error?.code).toBe('EPIPE');
    expect(logLinesDropped(log)).toBe(7);
    expect(await metrics.registry.metrics()).toMatch(/^parley_log_lines_dropped_total 7$/m);
    for (let i = 0; i < 2; i++) log.info({ i }, 'later still');
    expect(await metrics.registry.metrics()).toMatch(/^parley_log_lines_dropped_total 9$/m);
    stream.close();
  });

  it('a logger writing anywhere else has dropped nothing', () => {
    const log = createLogger('info', { write: () => undefined });
    log.info('a line');
    expect(logLinesDropped(log)).toBe(0);
  });
});
