import type { GenProc } from './ipc.js';
import { cpuMeter } from './proc.js';
import { median, round } from './stats.js';

export interface CpuWindow {
  cpuUs: number;
  /** The main thread's share of cpuUs (the event loop and the JavaScript on it). */
  mainUs: number;
  util: number;
}

/**
 * Runs a generator command whose `mark` events ('start' / 'end') bracket the measurement window,
 * and reads the CPU time of `pids` (servers, the generator itself) across exactly that window.
 */
export async function withCpuWindow<T>(
  gen: GenProc,
  cmd: string,
  args: unknown,
  pids: Record<string, number>,
  timeoutMs = 60_000,
): Promise<{ result: T; cpu: Record<string, CpuWindow> }> {
  let meters: Record<string, ReturnType<typeof cpuMeter>> = {};
  const cpu: Record<string, CpuWindow> = {};
  const result = await gen.request<T>(cmd, args, {
    timeoutMs,
    onEvent: (event, data) => {
      if (event !== 'mark') return;
      if (data === 'start') {
        meters = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMeter(pid)]));
      } else if (data === 'end') {
        for (const [k, m] of Object.entries(meters)) {
          const s = m.stop();
          cpu[k] = { cpuUs: s.cpuUs, mainUs: s.mainUs, util: round(s.util, 3) };
        }
      }
    },
  });
  return { result, cpu };
}

/** Median of each numeric field across rounds (nested one level for latency objects). */
export function medianOf<T extends Record<string, unknown>>(rows: T[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (rows.length === 0) return out;
  for (const key of Object.keys(rows[0])) {
    const vals = rows.map((r) => r[key]);
    if (typeof vals[0] === 'number') out[key] = round(median(vals as number[]), 3);
    else if (vals[0] && typeof vals[0] === 'object' && !Array.isArray(vals[0]))
      out[key] = medianOf(vals as Record<string, unknown>[]);
    else out[key] = vals[0];
  }
  return out;
}
