/** What /health reports. `status` is 'ok' (200) or 'starting' / 'draining' (503). */
export type Readiness = 'starting' | 'ok' | 'draining';

export interface HealthSource {
  readiness(): Readiness;
  connections(): number;
  workers(): number;
}

export function healthBody(source: HealthSource, startedAt: number) {
  return {
    status: source.readiness(),
    uptimeS: Math.round((performance.now() - startedAt) / 1000),
    connections: source.connections(),
    workers: source.workers(),
  };
}
