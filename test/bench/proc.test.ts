import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuMeter, cpuMicros, cpuThreadsMicros, pinApart } from '../../bench/lib/proc.js';

/**
 * The bench's CPU meter against a child's own account of its CPU (`process.cpuUsage()`). The meter
 * reads every thread's schedstat in nanoseconds; a reading in 10 ms ticks could not match to 2 ms.
 */
describe('bench CPU meter (bench/lib/proc.ts)', () => {
  let child: ReturnType<typeof spawn> | null = null;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = null;
  });

  /** A node child that, on each line of stdin, spins its main thread for that many ms of CPU and prints its cpuUsage (µs). */
  async function spinner() {
    const code = `
      const rl = require('node:readline').createInterface({ input: process.stdin });
      const used = () => { const u = process.cpuUsage(); return u.user + u.system; };
      rl.on('line', (line) => {
        const until = used() + Number(line) * 1000;
        while (used() < until);
        process.stdout.write(used() + '\\n');
      });
      process.stdout.write(used() + '\\n');`;
    const c = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    child = c;
    const lines: string[] = [];
    let waiting: ((line: string) => void) | null = null;
    let buf = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (waiting) {
          const w = waiting;
          waiting = null;
          w(line);
        } else lines.push(line);
      }
    });
    const next = () =>
      new Promise<number>((resolve) => {
        const l = lines.shift();
        if (l !== undefined) resolve(Number(l));
        else waiting = (line) => resolve(Number(line));
      });
    await next(); // started
    return {
      pid: c.pid as number,
      /** Spins for `ms` of CPU; resolves with the child's own cpuUsage (µs) when it is done. */
      spin: async (ms: number) => {
        c.stdin.write(`${ms}\n`);
        return next();
      },
    };
  }

  it('counts at least what the process says it spent over 150 ms of spinning (less 2 ms), and the spin on its main thread', async () => {
    const s = await spinner();
    const own0 = await s.spin(1);
    const meter = cpuMeter(s.pid);
    const before = cpuThreadsMicros(s.pid);
    const own1 = await s.spin(150);
    const after = cpuThreadsMicros(s.pid);
    const window = meter.stop();
    const ownUs = own1 - own0;
    expect(ownUs).toBeGreaterThanOrEqual(150_000);
    // The child's reading is taken inside the window the meter brackets, so the meter sees at least
    // what the child saw (less a tick-free margin for the readings' own cost) and not much more.
    expect(window.cpuUs).toBeGreaterThan(ownUs - 2_000);
    expect(window.cpuUs).toBeLessThan(ownUs + 30_000);
    expect(after.totalUs - before.totalUs).toBeGreaterThan(ownUs - 2_000);
    // The spin ran on the main thread: most of the window is its (cpuUsage counts every thread;
    // the spin's garbage keeps V8's helper threads a little busy).
    expect(window.mainUs).toBeGreaterThan(ownUs * 0.8);
    expect(window.mainUs).toBeLessThanOrEqual(window.cpuUs);
    expect(cpuMicros(s.pid)).toBeGreaterThanOrEqual(after.totalUs);
  });

  it('an idle process costs (nearly) nothing, and readings never go backwards', async () => {
    const s = await spinner();
    await s.spin(1);
    const a = cpuThreadsMicros(s.pid);
    await new Promise((r) => setTimeout(r, 100));
    const b = cpuThreadsMicros(s.pid);
    expect(b.totalUs).toBeGreaterThanOrEqual(a.totalUs);
    expect(b.totalUs - a.totalUs).toBeLessThan(20_000);
    expect(b.mainUs).toBeGreaterThanOrEqual(a.mainUs);
  });

  it('a process that is gone reads as an error, not as zero', async () => {
    const s = await spinner();
    const c = child!;
    c.kill('SIGKILL');
    await once(c, 'exit');
    child = null;
    expect(() => cpuMicros(s.pid)).toThrow();
  });
});

/** The vCPUs each thread of `pid` may run on (Cpus_allowed_list of /proc/<pid>/task/<tid>/status). */
function allowedCpus(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    return /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1] ?? '?';
  });
}

describe('pinning servers apart from their generators (bench/lib/proc.ts)', () => {
  const children: ReturnType<typeof spawn>[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });
  const idle = () => {
    const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(c);
    return c.pid as number;
  };
  const all = `0-${availableParallelism() - 1}`;

  it.skipIf(availableParallelism() < 2)(
    'puts every thread of the servers on vCPU 0 and of the generators on vCPU 1',
    () => {
      const server = idle();
      const generator = idle();
      expect(allowedCpus(server)).toContain(all);
      pinApart([server], [generator]);
      expect(new Set(allowedCpus(server))).toEqual(new Set(['0']));
      expect(new Set(allowedCpus(generator))).toEqual(new Set(['1']));
    },
  );

  it.skipIf(availableParallelism() < 2)(
    'when one process cannot be pinned, throws and leaves none pinned',
    async () => {
      const server = idle();
      const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
      await once(gone, 'exit');
      expect(() => pinApart([server], [gone.pid as number])).toThrow();
      // The server was pinned before the generator failed; it has every vCPU back.
      expect(new Set(allowedCpus(server))).toEqual(new Set([all]));
    },
  );
});
