import { readdirSync, readFileSync } from 'node:fs';

/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every mainstream kernel). */
export const CLK_TCK = 100;

/** utime + stime of a process (all its threads), in microseconds, from /proc/<pid>/stat. */
export function cpuMicros(pid: number): number {
  const { userUs, systemUs } = cpuSplitMicros(pid);
  return userUs + systemUs;
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

/** CPU time of a process across a window: call stop() at the end. */
export function cpuMeter(pid: number): { stop(): { cpuUs: number; wallMs: number; util: number } } {
  const c0 = cpuMicros(pid);
  const t0 = performance.now();
  return {
    stop() {
      const cpuUs = cpuMicros(pid) - c0;
      const wallMs = performance.now() - t0;
      return { cpuUs, wallMs, util: cpuUs / 1000 / wallMs };
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
