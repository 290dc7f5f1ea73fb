import type { Metric, Registry } from 'prom-client';

/** One exposition line's worth: what prom-client's registry formats (`name{le="…"} value`). */
interface Sample {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
  /** prom-client's bucket samples carry one (always null without exemplars); the JSON form shows it. */
  readonly exemplar?: null;
}

/**
 * A histogram without labels whose `observe` only adds to plain numbers; prom-client's registry
 * reads it when /metrics is scraped, in the very text prom-client's own `Histogram` would give
 * (test/unit/tallied-histogram.test.ts compares the two). prom-client's `observe` builds a closure
 * and a label object, validates and hashes the labels, and keys each bucket by its bound turned
 * into a string, on every call: with one observation per relayed message that was 0.6–0.8 µs of
 * an ICE relay's ~13 µs at saturation (`perf`, docs/benchmarks.md, issue 14, sixth pass), as
 * `Tally` (metrics.ts) did for the counters.
 */
export class TalliedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last one is above every bound (+Inf). */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;
  /** After `reset()` and before the next observation, prom-client exposes no samples at all. */
  #cleared = false;

  constructor(opts: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    if (opts.buckets.some((b, i) => i > 0 && b <= opts.buckets[i - 1]))
      throw new TypeError(`${opts.name}: buckets must increase`);
    this.#bounds = [...opts.buckets];
    this.#counts = new Float64Array(this.#bounds.length + 1);
    // The registry takes any object that reads like a metric (name, help, type, get, reset); its
    // type names only prom-client's own classes.
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric);
  }

  /** Counts one value: the first bucket whose bound is at least `value`. Non-finite values throw, as prom-client's do. */
  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
    this.#count++;
    this.#cleared = false;
  }

  /** Observations so far (tests). */
  get count(): number {
    return this.#count;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
    this.#cleared = true;
  }

  get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: Sample[];
  }> {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    const done = { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
    if (this.#cleared) return Promise.resolve(done);
    let cumulative = 0;
    this.#bounds.forEach((le, i) => {
      cumulative += this.#counts[i];
      values.push({ metricName: bucket, labels: { le }, value: cumulative, exemplar: null });
    });
    values.push(
      { metricName: bucket, labels: { le: '+Inf' }, value: this.#count, exemplar: null },
      { metricName: `${this.name}_sum`, labels: {}, value: this.#sum },
      { metricName: `${this.name}_count`, labels: {}, value: this.#count },
    );
    return Promise.resolve(done);
  }
}
