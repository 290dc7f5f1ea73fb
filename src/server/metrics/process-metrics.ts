import { createRequire } from 'node:module';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { defaults } from '../config/defaults.js';

/** One of prom-client's default metrics: registers its metric(s) in `register`. */
type DefaultMetric = (register: Registry, config: object) => void;

/** prom-client's GC duration histogram: the one default metric that installs a GC observer. */
const GC_METRIC = 'gc';

/**
 * The process metrics prom-client's `collectDefaultMetrics` publishes (CPU, resident memory, heap
 * and heap spaces, file descriptors, handles, event-loop lag, version, start time), with the
 * `parley_` prefix, and without `nodejs_gc_duration_seconds` unless `gcDurations`.
 *
 * Why not the GC histogram by default: it observes every garbage collection through a
 * `PerformanceObserver`, and that alone (an observer with an empty callback, in the relay bench's
 * lean relay) made a relayed message 6–8 % dearer at 5k msg/s for ICE and SDP payloads alike, in
 * four runs (docs/benchmarks.md, thirteenth pass). Everything else here is read only when /metrics
 * is scraped, but the event-loop lag, which samples on a timer (`eventLoopMonitoringPrecisionMs`).
 *
 * prom-client has no switch for one default metric, so each is loaded from its own module, by the
 * names prom-client lists (`collectDefaultMetrics.metricsList`); a release that moves them fails
 * at start-up and in test/http/process-metrics.test.ts, not silently.
 */
export function collectProcessMetrics(register: Registry, opts: { gcDurations: boolean }): void {
  const config = {
    register,
    prefix: 'parley_',
    eventLoopMonitoringPrecision: defaults.eventLoopMonitoringPrecisionMs,
  };
  if (opts.gcDurations) {
    collectDefaultMetrics(config);
    return;
  }
  const require = createRequire(import.meta.url);
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === GC_METRIC) continue;
    const metric = require(`prom-client/lib/metrics/${name}.js`) as DefaultMetric;
    metric(register, config);
  }
}
