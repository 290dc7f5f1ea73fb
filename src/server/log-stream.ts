import { write as fsWrite, writeSync as fsWriteSync } from 'node:fs';
import { defaults } from './config/defaults.js';
import { flushOnExit, stopFlushingOnExit } from './flush-on-exit.js';
import { systemClock, type Clock, type Timer } from './time/clock.js';

/**
 * The two calls the stream makes on its file descriptor. A port, so that tests can make a write
 * partial or fail with EAGAIN on demand, which a real pipe does not do reliably.
 */
export interface LogSink {
  /** As `fs.write`: calls back once, with the bytes written (possibly fewer than given) or an error. */
  write(buf: Buffer, cb: (err: NodeJS.ErrnoException | null, written: number) => void): void;
  /** As `fs.writeSync`: the bytes written (possibly fewer than given), or throws. */
  writeSync(buf: Buffer): number;
}

/** The sink of a file descriptor: writes on the libuv pool, and synchronous writes for exit. */
export function fdSink(fd: number): LogSink {
  return {
    write: (buf, cb) => fsWrite(fd, buf, 0, buf.length, null, cb),
    writeSync: (buf) => fsWriteSync(fd, buf, 0, buf.length, null),
  };
}

export type LogStreamLimits = { -readonly [K in keyof typeof defaults.log]: number };

export interface LogStreamOptions extends Partial<LogStreamLimits> {
  /** The file descriptor written to, unless `sink` is given. Default 1 (stdout); never closed. */
  fd?: number;
  /** Where the bytes go. Default `fdSink(fd)`. */
  sink?: LogSink;
  /** The flush and retry timers, and the time in the dropped-lines line. Default the system clock. */
  clock?: Clock;
  /** Blocks the thread between EAGAIN retries of a synchronous flush. Default `Atomics.wait`. */
  sleepSync?: (ms: number) => void;
  /**
   * The line written where lines were dropped, with how many (JSON, ending in a newline). Default a
   * pino-shaped warning: `{"level":40,"time":…,"dropped":N,"msg":"log lines dropped"}`.
   */
  droppedLine?: (dropped: number, timeMs: number) => string;
}

interface FlushWaiter {
  upTo: number;
  cb: (err?: Error) => void;
}

/**
 * pino's destination for the server's log lines: asynchronous, batched, bounded.
 *
 * `write(line)` appends the line to an array and adds its own byte length to a running count, so a
 * line costs O(its length) whatever is already waiting. When 4 KiB wait and no write is running,
 * they are joined and handed to `fs.write` (the libuv pool) as one Buffer; lines that come during
 * that write wait for the next one, and order is never changed. A line that no batch picks up is
 * written within `flushMs` by an unref'd timer, which only runs while lines wait.
 *
 * The fd may refuse bytes. A short write continues with the rest of the same Buffer (byte-exact,
 * even inside a UTF-8 character). EAGAIN or EBUSY (fd 1 is a non-blocking pipe once something has
 * touched `process.stdout`) retries `retryMs` later, never in a loop. While the reader does not keep
 * up, at most `maxBufferedBytes` are held; later lines are dropped and counted, and once the
 * writes go through again one `droppedLine` takes their place, so the log shows where the gap is
 * and how big. Any other error (EPIPE: the reader went away) stops the stream for good: nothing is
 * thrown, nothing more is held, every later line is only counted.
 *
 * On process exit (`process.exit()` included) and on `flushSync()` (pino calls it after every
 * `fatal` line) everything buffered is written synchronously, with bounded retries on EAGAIN.
 */
export class LogStream {
  readonly #sink: LogSink;
  readonly #clock: Clock;
  readonly #sleepSync: (ms: number) => void;
  readonly #droppedLine: (dropped: number, timeMs: number) => string;
  readonly #limits: LogStreamLimits;

  /** Lines accepted and not yet handed to the sink; those before `#head` are already taken. */
  #queue: string[] = [];
  #head = 0;
  #queuedBytes = 0;
  /** Bytes handed to the sink and not yet written: in flight, or waiting for an EAGAIN retry. */
  #chunk: Buffer | null = null;
  #inFlight = false;
  #flushTimer: Timer | null = null;
  #retryTimer: Timer | null = null;
  /** The flush timer fired while a write ran: when it ends, what waits goes out whatever its size. */
  #flushDue = false;
  /**
   * Lines dropped since the last dropped-lines line. While it is above zero every new line is
   * dropped too, so that the dropped-lines line, when it goes in, stands exactly where the gap is.
   */
  #unreported = 0;
  /** The last byte written ended a line. */
  #atLineStart = true;
  /** Bytes were given up in the middle of a line: the next line written must start a new one. */
  #midLine = false;
  #dropped = 0;
  #error: NodeJS.ErrnoException | null = null;
  #closed = false;
  /** Bytes accepted, and bytes written or given up, since creation: what `flush(cb)` waits on. */
  #acceptedBytes = 0;
  #settledBytes = 0;
  #waiters: FlushWaiter[] = [];

  constructor(opts: LogStreamOptions = {}) {
    const { fd = 1, sink, clock, sleepSync, droppedLine, ...limits } = opts;
    this.#sink = sink ?? fdSink(fd);
    this.#clock = clock ?? systemClock;
    this.#sleepSync = sleepSync ?? atomicSleep;
    this.#droppedLine = droppedLine ?? defaultDroppedLine;
    this.#limits = { ...defaults.log, ...limits };
    flushOnExit(this);
  }

  /** Lines dropped since creation: over the buffer cap, after a write error, or after `close()`. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** Bytes held: the lines waiting plus what the current write has not written yet. */
  get bufferedBytes(): number {
    return this.#queuedBytes + (this.#chunk?.length ?? 0);
  }

  /** The write error that stopped the stream (EPIPE: the reader went away), or null. */
  get error(): NodeJS.ErrnoException | null {
    return this.#error;
  }

  write(line: string): void {
    if (this.#error !== null || this.#closed) {
      this.#dropped++;
      return;
    }
    // Nothing is being written (the drop was a line over the cap, or a synchronous flush gave up):
    // the gap can be marked now.
    if (this.#unreported > 0 && this.#chunk === null) this.#reportDrops(false);
    const bytes = Buffer.byteLength(line);
    if (this.#unreported === 0 && this.bufferedBytes + bytes <= this.#limits.maxBufferedBytes) {
      this.#enqueue(line, bytes);
    } else {
      this.#unreported++;
      this.#dropped++;
    }
    // While a write runs, its end decides what comes next.
    if (this.#chunk === null) this.#schedule();
  }

  /**
   * Writes what is buffered now, asynchronously, without waiting for a full batch; `cb` runs once
   * every line accepted before the call is written (or given up on), with the error if the stream
   * has failed. pino's `logger.flush(cb)` lands here.
   */
  flush(cb: (err?: Error) => void = () => {}): void {
    if (this.#error !== null) {
      process.nextTick(cb, this.#error);
      return;
    }
    if (this.#settledBytes >= this.#acceptedBytes) {
      process.nextTick(cb);
      return;
    }
    this.#waiters.push({ upTo: this.#acceptedBytes, cb });
    if (this.#chunk === null) this.#schedule();
    else this.#flushDue = true;
  }

  /**
   * Writes everything buffered, synchronously: on process exit, where no event loop is left, and
   * from pino's `fatal()`. EAGAIN is retried every `syncRetryMs` (a real sleep, the thread blocks);
   * once the reader has taken nothing for `syncGiveUpMs` the rest is dropped and counted, so a stuck
   * log pipe cannot hold the process at exit forever.
   *
   * A write already in flight on the libuv pool cannot be waited for here. Its bytes are almost
   * always written already (the pool runs a write within microseconds of its submission); if not,
   * they land after these, or, at exit, may not land at all. sonic-boom, which this replaces, has
   * the same limit.
   */
  flushSync(): void {
    if (this.#error !== null) return;
    if (this.#unreported > 0) this.#reportDrops(true);
    const parts: Buffer[] = [];
    if (this.#chunk !== null && !this.#inFlight) {
      parts.push(this.#chunk);
      this.#chunk = null;
      this.#cancelRetry();
    }
    if (this.#head < this.#queue.length) parts.push(Buffer.from(this.#take(this.#queue.length), 'utf8'));
    if (parts.length === 0) return;
    let buf = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const maxStalls = Math.ceil(this.#limits.syncGiveUpMs / this.#limits.syncRetryMs);
    let stalls = 0;
    while (buf.length > 0) {
      let written = 0;
      try {
        written = this.#sink.writeSync(buf);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (!isBusy(err)) {
          this.#fail(err, buf);
          return;
        }
      }
      if (written > 0) {
        stalls = 0;
        this.#wrote(buf, written);
        buf = buf.subarray(written);
      } else if (++stalls <= maxStalls) {
        this.#sleepSync(this.#limits.syncRetryMs);
      } else {
        this.#giveUp(buf);
        break;
      }
    }
    this.#settleWaiters();
  }

  /**
   * Writes what is buffered (synchronously), then stops: no timer, no exit hook, and later lines
   * are only counted as dropped. The fd itself is left open. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.flushSync();
    this.#closed = true;
    this.#cancelFlush();
    this.#cancelRetry();
    stopFlushingOnExit(this);
  }

  #enqueue(line: string, bytes: number): void {
    this.#queue.push(line);
    this.#queuedBytes += bytes;
    this.#acceptedBytes += bytes;
  }

  /** With no write running: write now if a batch is full or a flush is due, else make sure the timer runs. */
  #schedule(): void {
    if (this.#head === this.#queue.length) return;
    if (this.#queuedBytes >= this.#limits.batchBytes || this.#flushDue || this.#waiters.length > 0) {
      this.#startWrite();
    } else if (this.#flushTimer === null) {
      // Not cleared when a batch goes out: it fires at most once more, finds nothing, and stops.
      this.#flushTimer = this.#clock.setTimeout(this.#onFlushTimer, this.#limits.flushMs);
      this.#flushTimer.unref();
    }
  }

  readonly #onFlushTimer = (): void => {
    this.#flushTimer = null;
    if (this.#chunk !== null) this.#flushDue = true;
    else if (this.#head < this.#queue.length) this.#startWrite();
  };

  #startWrite(): void {
    let end = this.#queue.length;
    if (this.#queuedBytes > this.#limits.maxWriteBytes) {
      // A backlog: written in pieces of whole lines (at least one).
      end = this.#head;
      let bytes = 0;
      while (end < this.#queue.length) {
        const n = Buffer.byteLength(this.#queue[end]);
        if (end > this.#head && bytes + n > this.#limits.maxWriteBytes) break;
        bytes += n;
        end++;
      }
    }
    const chunk = Buffer.from(this.#take(end), 'utf8');
    this.#chunk = chunk;
    this.#send(chunk);
  }

  /** The queued lines up to `end`, joined, taken off the queue. */
  #take(end: number): string {
    const all = this.#head === 0 && end === this.#queue.length;
    const text = (all ? this.#queue : this.#queue.slice(this.#head, end)).join('');
    if (end === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      this.#queuedBytes = 0;
      this.#flushDue = false;
    } else {
      this.#head = end;
      this.#queuedBytes -= Buffer.byteLength(text);
      if (this.#head > 1_024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
    }
    return text;
  }

  #send(chunk: Buffer): void {
    this.#inFlight = true;
    try {
      this.#sink.write(chunk, this.#onWritten);
    } catch (err) {
      this.#inFlight = false;
      this.#fail(err as NodeJS.ErrnoException);
    }
  }

  readonly #onWritten = (err: NodeJS.ErrnoException | null, written: number): void => {
    this.#inFlight = false;
    const chunk = this.#chunk;
    if (chunk === null) return; // the stream failed meanwhile
    if (err !== null) {
      if (!isBusy(err)) this.#fail(err);
      else if (this.#closed)
        this.#dropChunk(chunk); // a closed stream keeps no timer
      else {
        this.#retryTimer = this.#clock.setTimeout(this.#onRetryTimer, this.#limits.retryMs);
        this.#retryTimer.unref();
      }
      return;
    }
    this.#wrote(chunk, written);
    if (written < chunk.length) {
      // The rest of the same bytes: a character cut in two is completed, never re-encoded.
      this.#chunk = chunk.subarray(written);
      this.#send(this.#chunk);
      return;
    }
    this.#chunk = null;
    if (this.#unreported > 0) this.#reportDrops(false);
    this.#settleWaiters();
    this.#schedule();
  };

  readonly #onRetryTimer = (): void => {
    this.#retryTimer = null;
    if (this.#chunk !== null && !this.#inFlight) this.#send(this.#chunk);
  };

  /**
   * Queues the dropped-lines line where the gap is, if it fits under the cap (`force`: it goes in
   * regardless, for a synchronous flush); the count starts again from there.
   */
  #reportDrops(force: boolean): void {
    const line = (this.#midLine ? '\n' : '') + this.#droppedLine(this.#unreported, this.#clock.now());
    const bytes = Buffer.byteLength(line);
    if (!force && this.bufferedBytes + bytes > this.#limits.maxBufferedBytes) return;
    this.#unreported = 0;
    this.#midLine = false;
    this.#enqueue(line, bytes);
  }

  #wrote(buf: Buffer, written: number): void {
    this.#settledBytes += written;
    this.#atLineStart = buf[written - 1] === NL;
  }

  /** Bytes that will not be written after all: their lines count as dropped, and are reported. */
  #giveUp(unwritten: Buffer): void {
    const lines = countLines(unwritten);
    this.#dropped += lines;
    this.#unreported += lines;
    this.#midLine ||= !this.#atLineStart;
    this.#settledBytes += unwritten.length;
  }

  #dropChunk(chunk: Buffer): void {
    this.#chunk = null;
    this.#giveUp(chunk);
    this.#settleWaiters();
  }

  /** A write error other than EAGAIN: the fd is no use any more. Hold nothing, count everything. */
  #fail(err: NodeJS.ErrnoException, unwritten?: Buffer): void {
    this.#error = err;
    this.#dropped +=
      (unwritten === undefined ? 0 : countLines(unwritten)) +
      (this.#chunk === null ? 0 : countLines(this.#chunk)) +
      (this.#queue.length - this.#head);
    this.#chunk = null;
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#settledBytes = this.#acceptedBytes;
    this.#cancelFlush();
    this.#cancelRetry();
    this.#settleWaiters(err);
    stopFlushingOnExit(this);
  }

  #settleWaiters(err?: Error): void {
    if (this.#waiters.length === 0) return;
    const done = this.#waiters.filter((w) => err !== undefined || w.upTo <= this.#settledBytes);
    if (done.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => !done.includes(w));
    // On the next tick: a callback that logs or throws cannot re-enter or break the stream.
    for (const w of done) process.nextTick(w.cb, err);
  }

  #cancelFlush(): void {
    if (this.#flushTimer === null) return;
    this.#clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
  }

  #cancelRetry(): void {
    if (this.#retryTimer === null) return;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }
}

const NL = 0x0a;

const isBusy = (err: NodeJS.ErrnoException) => err.code === 'EAGAIN' || err.code === 'EBUSY';

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NL); i !== -1; i = buf.indexOf(NL, i + 1)) n++;
  return n;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** What sonic-boom does between synchronous retries: a real sleep, without spinning the CPU. */
const atomicSleep = (ms: number): void => {
  Atomics.wait(sleepCell, 0, 0, ms);
};

const defaultDroppedLine = (dropped: number, timeMs: number): string =>
  `{"level":40,"time":${timeMs},"dropped":${dropped},"msg":"log lines dropped"}\n`;
