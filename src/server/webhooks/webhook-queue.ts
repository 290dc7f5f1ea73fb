import { Counter, Gauge, type Registry } from 'prom-client';
import { WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER } from '../../protocol/index.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import type { Clock, Timer } from '../time/clock.js';
import { signWebhook } from './signature.js';

/** One event for one URL. */
interface Delivery {
  readonly url: string;
  readonly id: string;
  readonly event: string;
  readonly body: string;
  readonly lane: Lane;
  attempts: number;
}

/** The deliveries of one order key (a room, a call) to one URL: sent one at a time, in order. */
interface Lane {
  readonly key: string;
  readonly url: string;
  readonly queue: Delivery[];
  /** The head is being sent, or waits for its retry. */
  busy: boolean;
  retry: Timer | null;
}

export interface WebhookQueueOptions {
  urls: readonly string[];
  secret: string;
  registry: Registry;
  log: Logger;
  clock: Clock;
  /** Deliveries waiting, all URLs together; beyond it the oldest waiting one is dropped. */
  maxQueued?: number;
  maxAttempts?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  timeoutMs?: number;
  concurrencyPerUrl?: number;
}

/**
 * Delivers webhook bodies without ever holding up signaling: `enqueue` only queues. Per URL, the
 * events of one order key (a room) go one at a time and in order, different keys in parallel up to
 * a limit. A 5xx, a 429, a timeout or a network error is retried with exponential backoff and full
 * jitter, up to a number of attempts; another 4xx is final. The queue is bounded: when full, the
 * oldest waiting delivery is dropped and counted. `/metrics` shows depth, outcomes and drops.
 */
export class WebhookQueue {
  readonly #o: Required<Omit<WebhookQueueOptions, 'registry'>>;
  readonly #lanes = new Map<string, Lane>();
  /** Waiting deliveries (not in flight), oldest first: the drop order. */
  readonly #waiting = new Set<Delivery>();
  readonly #inFlight = new Map<string, number>();
  readonly #aborts = new Set<AbortController>();
  readonly #outcomes: Counter<'result'>;
  readonly #dropped: Counter;
  #idle: (() => void)[] = [];
  #closed = false;

  constructor(options: WebhookQueueOptions) {
    this.#o = {
      maxQueued: defaults.webhookQueueMax,
      maxAttempts: defaults.webhookMaxAttempts,
      retryBaseMs: defaults.webhookRetryBaseMs,
      retryMaxMs: defaults.webhookRetryMaxMs,
      timeoutMs: defaults.webhookTimeoutMs,
      concurrencyPerUrl: defaults.webhookConcurrencyPerUrl,
      ...options,
    };
    const registers = [options.registry];
    const depth = () => this.size;
    new Gauge({
      name: 'parley_webhook_queue_depth',
      help: 'Webhook deliveries waiting or in flight',
      registers,
      collect() {
        this.set(depth());
      },
    });
    this.#outcomes = new Counter({
      name: 'parley_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result: delivered, retried (a retry is scheduled) or failed (given up)',
      labelNames: ['result'],
      registers,
    });
    this.#dropped = new Counter({
      name: 'parley_webhook_dropped_total',
      help: 'Webhook deliveries dropped because the queue was full (the oldest waiting one goes)',
      registers,
    });
  }

  /** Deliveries waiting or in flight. */
  get size(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.queue.length;
    return n;
  }

  /** Queues one event body for every URL. Never blocks, never throws. */
  enqueue(id: string, event: string, body: string, orderKey: string): void {
    if (this.#closed) return;
    for (const url of this.#o.urls) {
      const laneKey = `${url}\u0000${orderKey}`;
      let lane = this.#lanes.get(laneKey);
      if (!lane) {
        lane = { key: laneKey, url, queue: [], busy: false, retry: null };
        this.#lanes.set(laneKey, lane);
      }
      const d: Delivery = { url, id, event, body, lane, attempts: 0 };
      lane.queue.push(d);
      this.#waiting.add(d);
      while (this.#waiting.size > this.#o.maxQueued) this.#dropOldest();
    }
    this.#pump();
  }

  /**
   * Shutdown: accepts nothing more, gives what is queued up to `flushMs` to go out, then aborts
   * the rest and clears every timer. Idempotent.
   */
  async close(flushMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.size > 0) {
      let timer: Timer | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idle.push(resolve)),
        new Promise<void>((resolve) => {
          timer = this.#o.clock.setTimeout(resolve, flushMs);
        }),
      ]);
      if (timer) this.#o.clock.clearTimeout(timer);
    }
    for (const lane of this.#lanes.values()) if (lane.retry) this.#o.clock.clearTimeout(lane.retry);
    for (const a of this.#aborts) a.abort();
    this.#lanes.clear();
    this.#waiting.clear();
  }

  #dropOldest(): void {
    const oldest = this.#waiting.values().next().value;
    if (!oldest) return;
    this.#waiting.delete(oldest);
    const q = oldest.lane.queue;
    const i = q.indexOf(oldest);
    if (i >= 0) q.splice(i, 1);
    // A head waiting for its retry is dropped: the lane moves on to the next.
    if (i === 0 && oldest.lane.retry) {
      this.#o.clock.clearTimeout(oldest.lane.retry);
      oldest.lane.retry = null;
      oldest.lane.busy = false;
    }
    this.#forgetIfEmpty(oldest.lane);
    this.#dropped.inc();
    this.#o.log.warn(
      { id: oldest.id, event: oldest.event, url: oldest.url },
      'webhook queue full: dropped the oldest',
    );
  }

  #pump(): void {
    for (const lane of this.#lanes.values()) {
      if (lane.busy || lane.queue.length === 0) continue;
      const inFlight = this.#inFlight.get(lane.url) ?? 0;
      if (inFlight >= this.#o.concurrencyPerUrl) continue;
      const head = lane.queue[0];
      lane.busy = true;
      this.#waiting.delete(head);
      this.#inFlight.set(lane.url, inFlight + 1);
      void this.#attempt(head);
    }
    if (this.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #attempt(d: Delivery): Promise<void> {
    d.attempts++;
    const outcome = await this.#post(d);
    this.#inFlight.set(d.url, (this.#inFlight.get(d.url) ?? 1) - 1);
    const lane = d.lane;
    if (lane.queue[0] !== d) return; // dropped or closed meanwhile
    if (outcome === 'retry' && d.attempts < this.#o.maxAttempts && !this.#closed) {
      this.#outcomes.inc({ result: 'retried' });
      this.#waiting.add(d);
      const cap = Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** (d.attempts - 1));
      const delay = cap / 2 + Math.random() * (cap / 2);
      lane.retry = this.#o.clock.setTimeout(() => {
        lane.retry = null;
        lane.busy = false;
        this.#pump();
      }, delay);
      lane.retry.unref();
      return;
    }
    this.#outcomes.inc({ result: outcome === 'ok' ? 'delivered' : 'failed' });
    if (outcome !== 'ok') {
      this.#o.log.warn(
        { id: d.id, event: d.event, url: d.url, attempts: d.attempts },
        'webhook delivery failed',
      );
    }
    lane.queue.shift();
    this.#waiting.delete(d);
    lane.busy = false;
    this.#forgetIfEmpty(lane);
    this.#pump();
  }

  async #post(d: Delivery): Promise<'ok' | 'retry' | 'final'> {
    const abort = new AbortController();
    this.#aborts.add(abort);
    const timer = this.#o.clock.setTimeout(() => abort.abort(), this.#o.timeoutMs);
    try {
      const t = Math.floor(this.#o.clock.now() / 1000);
      const res = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'parley-webhooks/1',
          [WEBHOOK_ID_HEADER]: d.id,
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(this.#o.secret, d.body, t),
        },
        body: d.body,
        signal: abort.signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return 'ok';
      this.#o.log.info({ id: d.id, url: d.url, status: res.status, attempt: d.attempts }, 'webhook refused');
      return res.status >= 500 || res.status === 429 || res.status === 408 ? 'retry' : 'final';
    } catch (err) {
      this.#o.log.info(
        { id: d.id, url: d.url, err: (err as Error).message, attempt: d.attempts },
        'webhook unreachable',
      );
      return 'retry';
    } finally {
      this.#o.clock.clearTimeout(timer);
      this.#aborts.delete(abort);
    }
  }

  #forgetIfEmpty(lane: Lane): void {
    if (lane.queue.length === 0 && !lane.busy) this.#lanes.delete(lane.key);
  }
}
