/**
 * The process metrics (src/server/metrics/process-metrics.ts): prom-client's default metrics with
 * the `parley_` prefix, and the GC duration histogram (and its GC observer) only with METRICS_GC.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config/env.js';
import { Metrics } from '../../src/server/metrics/metrics.js';
import { collectProcessMetrics } from '../../src/server/metrics/process-metrics.js';
import { startServer } from '../helpers/server.js';

const GC_HISTOGRAM = 'parley_nodejs_gc_duration_seconds';

async function names(registry: Registry): Promise<string[]> {
  return (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
}

/** The `entryTypes` of every PerformanceObserver started while `run` runs. */
function observedWhile(run: () => void): string[][] {
  const observe = vi.spyOn(PerformanceObserver.prototype, 'observe');
  try {
    run();
    return observe.mock.calls.map(([opts]) => ('entryTypes' in opts ? [...opts.entryTypes] : [opts.type]));
  } finally {
    observe.mockRestore();
  }
}

/** A full garbage collection now (--expose-gc, set at run time for a fresh context). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('process metrics', () => {
  afterEach(() => vi.restoreAllMocks());

  it('without gcDurations: every default metric but the GC histogram, and no GC observer', async () => {
    const withGc = new Registry();
    const withoutGc = new Registry();
    const observedWith = observedWhile(() => collectProcessMetrics(withGc, { gcDurations: true }));
    const observedWithout = observedWhile(() => collectProcessMetrics(withoutGc, { gcDurations: false }));
    expect(observedWith).toContainEqual(['gc']);
    expect(observedWithout.flat()).not.toContain('gc');

    const all = await names(withGc);
    expect(all).toContain(GC_HISTOGRAM);
    expect(await names(withoutGc)).toEqual(all.filter((n) => n !== GC_HISTOGRAM));
    // The ones a dashboard reads, by their published names.
    for (const name of [
      'parley_process_cpu_user_seconds_total',
      'parley_process_resident_memory_bytes',
      'parley_process_open_fds',
      'parley_nodejs_heap_size_used_bytes',
      'parley_nodejs_eventloop_lag_p99_seconds',
      'parley_nodejs_active_handles_total',
      'parley_nodejs_version_info',
    ])
      expect(all).toContain(name);
  });

  it('the values are live: CPU time and heap are read at scrape time', async () => {
    const registry = new Registry();
    collectProcessMetrics(registry, { gcDurations: false });
    // prom-client counts the CPU time used since the metric was registered, and the kernel accounts
    // it in ticks: spend some (until the process's user time has moved on) so there is some to read.
    const from = process.cpuUsage().user;
    for (let spins = 0; process.cpuUsage().user === from && spins < 1e9; spins++) Math.sqrt(spins);
    const text = await registry.metrics();
    const cpu = /^parley_process_cpu_user_seconds_total (\S+)$/m.exec(text);
    const heap = /^parley_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
    expect(Number(cpu?.[1])).toBeGreaterThan(0);
    expect(Number(heap?.[1])).toBeGreaterThan(1_000_000);
  });

  it('with gcDurations the histogram counts collections', async () => {
    const metrics = new Metrics({ collectDefaults: true, gcDurations: true });
    collectGarbage();
    // The GC entry reaches the observer on a later turn of the loop.
    await new Promise((r) => setTimeout(r, 20));
    const text = await metrics.registry.metrics();
    const count = /^parley_nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)$/m.exec(text);
    expect(Number(count?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('Metrics without collectDefaults publishes no process metric', async () => {
    const all = await names(new Metrics().registry);
    expect(all.filter((n) => n.startsWith('parley_process_') || n.startsWith('parley_nodejs_'))).toEqual([]);
  });
});

describe('METRICS_GC', () => {
  it('is off by default and read as a boolean', () => {
    expect(loadConfig({}).metrics.gcDurations).toBe(false);
    expect(loadConfig({ METRICS_GC: 'true' }).metrics.gcDurations).toBe(true);
    expect(loadConfig({ METRICS_GC: '0' }).metrics.gcDurations).toBe(false);
  });

  it('refuses a value that is not a boolean, naming the variable', () => {
    expect(() => loadConfig({ METRICS_GC: 'maybe' })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_GC: 'maybe' })).toThrow(/METRICS_GC: .*\(got "maybe"\)/);
  });

  it.each([
    ['unset', {}, false],
    ['true', { METRICS_GC: 'true' }, true],
  ])(
    'a server with process metrics and METRICS_GC %s: /metrics has the GC histogram: %s',
    async (_, env, gc) => {
      const srv = await startServer(env, {}, { processMetrics: true });
      try {
        const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
        expect(text).toMatch(/^# TYPE parley_process_cpu_user_seconds_total counter$/m);
        expect(text).toMatch(/^# TYPE parley_connections gauge$/m);
        expect(/^# TYPE parley_nodejs_gc_duration_seconds histogram$/m.test(text)).toBe(gc);
      } finally {
        await srv.close();
      }
    },
  );
});
