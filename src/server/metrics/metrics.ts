import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics, one registry per server instance (tests run several servers in one process).
 * Hot paths take cached label children from `messagesIn(type)` etc. rather than passing labels on
 * every increment.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly #messagesIn: Counter<'type'>;
  readonly #messagesOut: Counter<'type'>;
  readonly #errors: Counter<'code'>;
  readonly relayLatency: Histogram;
  readonly #inChildren = new Map<string, Counter.Internal>();
  readonly #outChildren = new Map<string, Counter.Internal>();
  readonly #errorChildren = new Map<string, Counter.Internal>();

  constructor(opts: { collectDefaults?: boolean } = {}) {
    const registers = [this.registry];
    this.connections = new Gauge({
      name: 'parley_connections',
      help: 'Open WebSocket connections',
      registers,
    });
    this.#messagesIn = new Counter({
      name: 'parley_messages_in_total',
      help: 'Messages received, by type (unknown types counted as "unknown")',
      labelNames: ['type'],
      registers,
    });
    this.#messagesOut = new Counter({
      name: 'parley_messages_out_total',
      help: 'Messages sent, by type (a broadcast counts once per recipient)',
      labelNames: ['type'],
      registers,
    });
    this.#errors = new Counter({
      name: 'parley_errors_total',
      help: 'Error replies and refusals, by code',
      labelNames: ['code'],
      registers,
    });
    this.relayLatency = new Histogram({
      name: 'parley_relay_latency_seconds',
      help: 'Time from receiving a relayed message to handing it to the recipients’ sockets',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    if (opts.collectDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'parley_' });
  }

  messagesIn(type: string): Counter.Internal {
    return child(this.#inChildren, this.#messagesIn, type);
  }

  messagesOut(type: string): Counter.Internal {
    return child(this.#outChildren, this.#messagesOut, type);
  }

  errors(code: string): Counter.Internal {
    return child(this.#errorChildren, this.#errors, code);
  }
}

function child<L extends string>(cache: Map<string, Counter.Internal>, counter: Counter<L>, value: string) {
  let c = cache.get(value);
  if (!c) {
    c = counter.labels(value);
    cache.set(value, c);
  }
  return c;
}
