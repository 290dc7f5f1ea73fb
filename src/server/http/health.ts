/**
 * What /health reports. `status`: 'ok' (200); 'degraded' (200: the node serves, but its Redis is
 * unreachable, so cross-node features and PTT are refused until it returns; restarting the node
 * would not help); 'starting' / 'draining' (503: send traffic elsewhere). `uptimeS` (whole
 * seconds) and `uptime` (seconds, ms precision, as the systems Parley replaced answered) are the same.
 */
export type Readiness = 'starting' | 'ok' | 'draining';

/** `sfu` of /health; see WorkerPool.capacity (media/worker-pool.ts). */
export interface SfuHealth {
  status: 'ok' | 'degraded' | 'exhausted';
  exhaustedWorkers: number;
  transports: number;
  freePorts: number;
  consumers: number;
}

export interface HealthSource {
  readiness(): Readiness;
  connections(): number;
  workers(): number;
  /**
   * The SFU's capacity, its own field (issue 13): ports or consumer budget exhausted on some
   * worker (`degraded`) or every worker (`exhausted`). It never changes `status`, whose values
   * load balancers already act on. null when the SFU is disabled.
   */
  sfu(): SfuHealth | null;
  /** null on a single memory-backed node. */
  redis(): 'ok' | 'down' | null;
  nodeId: string;
}

export function healthBody(source: HealthSource, startedAt: number) {
  const ready = source.readiness();
  const redis = source.redis();
  const uptimeMs = performance.now() - startedAt;
  return {
    status: ready === 'ok' && redis === 'down' ? ('degraded' as const) : ready,
    uptimeS: Math.round(uptimeMs / 1000),
    /** The same in seconds with millisecond precision, under the name earlier systems' health checks read. */
    uptime: Math.round(uptimeMs) / 1000,
    connections: source.connections(),
    workers: source.workers(),
    node: source.nodeId,
    state: redis === null ? 'memory' : `redis:${redis}`,
    sfu: source.sfu(),
  };
}
