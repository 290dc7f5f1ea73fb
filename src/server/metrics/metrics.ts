import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics.js';
import { TalliedHistogram } from './tallied-histogram.js';

/**
 * A per-label count on the hot path: a plain number, read by prom-client only when /metrics is
 * scraped. prom-client's own `inc()` hashes the label set and allocates on every call; with two
 * or three counters per relayed message that was ~14% of a relayed message's JS cost (bench/
 * scenario 1), so the hot path now only adds to a number.
 */
export class Tally {
  value = 0;

  inc(n = 1): void {
    this.value += n;
  }
}

/** A counter with one label whose values are tallied in plain numbers and published at scrape time. */
function talliedCounter(
  name: string,
  help: string,
  label: string,
  registers: Registry[],
): Map<string, Tally> {
  const tallies = new Map<string, Tally>();
  const counter: Counter<string> = new Counter({
    name,
    help,
    labelNames: [label],
    registers,
    collect() {
      counter.reset();
      for (const [value, tally] of tallies) counter.inc({ [label]: value }, tally.value);
    },
  });
  return tallies;
}

/**
 * Prometheus metrics, one registry per server instance (tests run several servers in one process).
 * Hot paths take cached tallies from `messagesIn(type)` etc. rather than passing labels on every
 * increment.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly relayLatency: TalliedHistogram;
  readonly #inTallies: Map<string, Tally>;
  readonly #outTallies: Map<string, Tally>;
  readonly #errorTallies: Map<string, Tally>;

  /**
   * `collectDefaults`: the process metrics (process-metrics.ts), with the GC duration histogram
   * only if `gcDurations` too. `droppedLogLines`: how many log lines the server's stdout stream has
   * dropped so far (read at scrape time): lines lost while the log reader stalled or went away are
   * worth an alert.
   */
  constructor(
    opts: { collectDefaults?: boolean; gcDurations?: boolean; droppedLogLines?: () => number } = {},
  ) {
    const registers = [this.registry];
    this.connections = new Gauge({
      name: 'parley_connections',
      help: 'Open WebSocket connections',
      registers,
    });
    this.#inTallies = talliedCounter(
      'parley_messages_in_total',
      'Messages received, by type (unknown types counted as "unknown")',
      'type',
      registers,
    );
    this.#outTallies = talliedCounter(
      'parley_messages_out_total',
      'Messages sent, by type (a broadcast counts once per recipient)',
      'type',
      registers,
    );
    this.#errorTallies = talliedCounter(
      'parley_errors_total',
      'Error replies and refusals, by code',
      'code',
      registers,
    );
    this.relayLatency = new TalliedHistogram({
      name: 'parley_relay_latency_seconds',
      help: 'Time from receiving a relayed message to handing it to the recipients’ sockets',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    const droppedLogLines = opts.droppedLogLines;
    if (droppedLogLines) {
      const dropped: Counter = new Counter({
        name: 'parley_log_lines_dropped_total',
        help: 'Log lines dropped because stdout did not take them (a stalled or closed log reader)',
        registers,
        collect() {
          dropped.reset();
          dropped.inc(droppedLogLines());
        },
      });
    }
    if (opts.collectDefaults)
      collectProcessMetrics(this.registry, { gcDurations: opts.gcDurations ?? false });
  }

  messagesIn(type: string): Tally {
    return tally(this.#inTallies, type);
  }

  messagesOut(type: string): Tally {
    return tally(this.#outTallies, type);
  }

  errors(code: string): Tally {
    return tally(this.#errorTallies, code);
  }
}

function tally(tallies: Map<string, Tally>, value: string): Tally {
  let t = tallies.get(value);
  if (!t) {
    t = new Tally();
    tallies.set(value, t);
  }
  return t;
}
