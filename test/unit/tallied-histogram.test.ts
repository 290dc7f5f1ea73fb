import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/server/metrics/metrics.js';
import { TalliedHistogram } from '../../src/server/metrics/tallied-histogram.js';

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/** The same observations through prom-client's Histogram and through ours, each in its own registry. */
function both(values: number[], buckets = BUCKETS) {
  const theirs = new Registry();
  const ours = new Registry();
  const opts = { name: 'parley_test_seconds', help: 'A test histogram', buckets };
  const h = new Histogram({ ...opts, registers: [theirs] });
  const t = new TalliedHistogram({ ...opts, registers: [ours] });
  for (const v of values) {
    h.observe(v);
    t.observe(v);
  }
  return { theirs, ours, h, t };
}

describe('TalliedHistogram', () => {
  it('gives the very /metrics text prom-client’s Histogram gives for the same observations', async () => {
    // Below every bound, exactly on bounds (a bound belongs to its own bucket), between bounds,
    // above every bound (only +Inf), zero and negative values.
    const values = [
      0, -1, 0.00001, 0.00005, 0.00005, 0.00006, 0.0001, 0.0003, 0.001, 0.0099, 0.01, 0.07, 0.1, 0.1000001, 3,
      1e9,
    ];
    const { theirs, ours } = both(values);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toMatch(/^parley_test_seconds_bucket\{le="\+Inf"\} 16$/m);
    expect(text).toMatch(/^parley_test_seconds_bucket\{le="0.00005"\} 5$/m);
    expect(text).toMatch(/^parley_test_seconds_count 16$/m);
  });

  it('matches with no observation and in the JSON form; buckets that do not increase are refused', async () => {
    const empty = both([]);
    expect(await empty.ours.metrics()).toBe(await empty.theirs.metrics());
    // (prom-client takes them, and then counts `le` wrong: the first bucket's count is cumulative.)
    for (const buckets of [
      [5, 0.25, 1],
      [0.1, 0.1],
    ])
      expect(() => new TalliedHistogram({ name: 'x', help: 'x', buckets, registers: [] })).toThrow(
        /buckets must increase/,
      );
    const some = both([0.0002, 0.002, 0.02, 0.2]);
    expect(await some.ours.getMetricsAsJSON()).toEqual(await some.theirs.getMetricsAsJSON());
  });

  it('resets with the registry, and refuses a value that is not a number as prom-client does', async () => {
    const { theirs, ours, h, t } = both([0.001, 0.002]);
    theirs.resetMetrics();
    ours.resetMetrics();
    expect(t.count).toBe(0);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => h.observe(bad)).toThrow(TypeError);
      expect(() => t.observe(bad)).toThrow(TypeError);
    }
    t.observe(0.003);
    h.observe(0.003);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('is the relay latency of Parley’s metrics, in its registry under the same name', async () => {
    const metrics = new Metrics();
    metrics.relayLatency.observe(0.0002);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^# TYPE parley_relay_latency_seconds histogram$/m);
    expect(text).toMatch(/^parley_relay_latency_seconds_bucket\{le="0.0001"\} 0$/m);
    expect(text).toMatch(/^parley_relay_latency_seconds_bucket\{le="0.00025"\} 1$/m);
    expect(text).toMatch(/^parley_relay_latency_seconds_count 1$/m);
    // A second metric of that name in the registry is refused, as for prom-client's own.
    expect(
      () =>
        new TalliedHistogram({
          name: 'parley_relay_latency_seconds',
          help: 'again',
          buckets: [1],
          registers: [metrics.registry],
        }),
    ).toThrow(/already been registered/);
  });
});
