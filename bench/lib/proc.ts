import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every mainstream kernel). */
export const CLK_TCK = 100;

/**
 * CPU time of a process (all its live threads), in microseconds, to the nanosecond: the sum of each
 * thread's `sum_exec_runtime` (/proc/<pid>/task/<tid>/schedstat, field 1). /proc/<pid>/stat counts
 * in 10 ms ticks, which over a 5k msg/s window of 1.5–2.5 s is a step of 0.8–1.3 µs per message
 * (±4–7 % of the raw relay's figure at each end of the window). A thread that exits inside a window
 * takes its time with it (a Node server's threads live as long as it does). Falls back to
 * /proc/<pid>/stat where schedstat is missing.
 */
export function cpuMicros(pid: number): number {
  return cpuThreadsMicros(pid).totalUs;
}

/** {@link cpuMicros}, and the main thread's share of it (the rest: V8's compiler and GC threads, libuv's pool). */
export function cpuThreadsMicros(pid: number): { totalUs: number; mainUs: number } {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    tids = [];
  }
  let totalNs = 0;
  let mainNs = 0;
  let read = 0;
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
    } catch {
      continue; // the thread exited between the listing and the read
    }
    const ns = Number(text.slice(0, text.indexOf(' ')));
    if (!Number.isFinite(ns)) continue;
    totalNs += ns;
    if (tid === String(pid)) mainNs = ns;
    read++;
  }
  if (read === 0) {
    const { userUs, systemUs } = cpuSplitMicros(pid);
    return { totalUs: userUs + systemUs, mainUs: Number.NaN };
  }
  return { totalUs: totalNs / 1000, mainUs: mainNs / 1000 };
}

/** utime and stime of a process (all its threads) apart, in microseconds, from /proc/<pid>/stat. */
export function cpuSplitMicros(pid: number): { userUs: number; systemUs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after it are space-separated.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { userUs: (Number(rest[11]) * 1e6) / CLK_TCK, systemUs: (Number(rest[12]) * 1e6) / CLK_TCK };
}

/** Resident set size in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)/.exec(status);
  return m ? Number(m[1]) : Number.NaN;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Hard RLIMIT_NOFILE of a process. */
export function fdHardLimit(pid: number | 'self' = 'self'): number {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
  if (!m) return Number.NaN;
  return m[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[2]);
}

/** CPU time of a process across a window ({@link cpuThreadsMicros}): call stop() at the end. */
export function cpuMeter(pid: number): {
  stop(): { cpuUs: number; mainUs: number; wallMs: number; util: number };
} {
  const c0 = cpuThreadsMicros(pid);
  const t0 = performance.now();
  return {
    stop() {
      const c1 = cpuThreadsMicros(pid);
      const cpuUs = c1.totalUs - c0.totalUs;
      const wallMs = performance.now() - t0;
      return { cpuUs, mainUs: c1.mainUs - c0.mainUs, wallMs, util: cpuUs / 1000 / wallMs };
    },
  };
}

/** Per-socket receive drops from /proc/net/udp, keyed by local port (this network namespace). */
export function udpDrops(): Map<number, number> {
  const out = new Map<number, number>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13) continue;
      const port = parseInt(f[1].split(':')[1], 16);
      out.set(port, (out.get(port) ?? 0) + Number(f[12]));
    }
  }
  return out;
}

/** UDP RcvbufErrors / SndbufErrors counters of this network namespace (/proc/net/snmp). */
export function udpErrors(): { rcvbuf: number; sndbuf: number; inErrors: number } {
  const text = readFileSync('/proc/net/snmp', 'utf8');
  const lines = text.split('\n').filter((l) => l.startsWith('Udp:'));
  const keys = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/);
  const get = (k: string) => Number(vals[keys.indexOf(k)] ?? Number.NaN);
  return { rcvbuf: get('RcvbufErrors'), sndbuf: get('SndbufErrors'), inErrors: get('InErrors') };
}

/**
 * Pins every thread of a process to one vCPU (threads it starts later inherit it); needs taskset
 * (util-linux). Throws when taskset fails.
 */
export function pinToCpu(pid: number, cpu: number): void {
  // `taskset -a` walks /proc/<pid>/task and exits 0 when there is none: a process that is gone
  // would read as pinned. Reading its threads first throws (ENOENT) instead.
  readdirSync(`/proc/${pid}/task`);
  execFileSync('taskset', ['-a', '-c', '-p', String(cpu), String(pid)], { stdio: 'ignore' });
}

/**
 * Servers on vCPU 0, their load generators on vCPU 1, so that a server never shares a vCPU with the
 * process its writes wake (by the scheduler's choice, it sometimes did: whole rounds ran 30–50 %
 * slower, and the server's CPU then counts the switches). On failure, every process named gets
 * all vCPUs back (best effort) and the error is thrown: nothing stays half pinned.
 */
export function pinApart(servers: readonly number[], generators: readonly number[]): void {
  try {
    for (const pid of servers) pinToCpu(pid, 0);
    for (const pid of generators) pinToCpu(pid, 1);
  } catch (err) {
    const all = `0-${availableParallelism() - 1}`;
    for (const pid of [...servers, ...generators]) {
      try {
        execFileSync('taskset', ['-a', '-c', '-p', all, String(pid)], { stdio: 'ignore' });
      } catch {
        // Gone, or taskset itself is missing: nothing to give back.
      }
    }
    throw err;
  }
}
