/**
 * deploy/ cannot be run here (no Docker engine, no systemd), so it is read and cross-checked: the
 * compose file, HAProxy's config, the systemd unit, the env example and the README must agree on
 * ports, addresses and settings, and every setting must be one the server reads. HAProxy itself
 * runs deploy/haproxy.cfg in test/deploy/haproxy.test.ts.
 */
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { ENV_VARS, loadConfig } from '../../src/server/config/env.js';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  ports?: string[];
  command?: string[];
  volumes?: string[];
  stop_grace_period?: string;
}
const compose = load(read('deploy/docker-compose.yml')) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const dockerfile = read('Dockerfile');
const haproxy = read('deploy/haproxy.cfg');
const unit = read('deploy/parley@.service');
const readme = read('README.md');
const nodes = Object.entries(compose.services).filter(([, s]) => s.image === 'parley:latest');

/** `host:container/proto` → the host ports it publishes. */
function published(ports: string[] = []): { host: number[]; container: number[]; proto: string }[] {
  return ports.map((p) => {
    const m = /^(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?(?:\/(udp|tcp))?$/.exec(p);
    if (!m) throw new Error(`unreadable port mapping ${p}`);
    const range = (a: string, b?: string) => [Number(a), Number(b ?? a)];
    return { host: range(m[1], m[2]), container: range(m[3], m[4]), proto: m[5] ?? 'tcp' };
  });
}
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);

describe('deploy/', () => {
  it('compose has HAProxy, Redis, coturn and two Parley nodes', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'coturn',
      'haproxy',
      'parley1',
      'parley2',
      'redis',
    ]);
    expect(nodes.map(([name]) => name)).toEqual(['parley1', 'parley2']);
  });

  it('every node setting is one the server reads, and a valid configuration', () => {
    for (const [name, svc] of nodes) {
      const env = svc.environment ?? {};
      for (const key of Object.keys(env)) expect(ENV_VARS, `${name}: ${key}`).toContain(key);
      // Compose fills ${PUBLIC_IP} etc. from deploy/.env; any value of the right shape will do here.
      const filled = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [
          k,
          v.replace(/\$\{PUBLIC_IP[^}]*\}/g, '203.0.113.10').replace(/\$\{[A-Z_]+[^}]*\}/g, 'x'.repeat(32)),
        ]),
      );
      expect(() => loadConfig(filled), name).not.toThrow();
      expect(env).toMatchObject({ TRUST_PROXY: 'true', REDIS_URL: 'redis://redis:6379', HOST: '0.0.0.0' });
    }
  });

  it('HAProxy balances exactly the compose nodes, on their PORT, with /health checks and forwarded addresses', () => {
    const servers = [...haproxy.matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)].map((m) => ({
      name: m[1],
      host: m[2],
      port: m[3],
    }));
    expect(servers).toEqual(nodes.map(([name, svc]) => ({ name, host: name, port: svc.environment?.PORT })));
    expect(haproxy).toMatch(/^\s*http-check send meth GET uri \/health$/m);
    expect(haproxy).toMatch(/^\s*http-check expect status 200$/m);
    expect(haproxy).toMatch(/^\s*option forwardfor$/m);
    // A draining node (503) must leave rotation within a second: interval × fall ≤ 1 s.
    const inter = Number(/\binter (\d+)ms\b/.exec(haproxy)?.[1]);
    const fall = Number(/\bfall (\d+)\b/.exec(haproxy)?.[1]);
    expect(inter * fall).toBeLessThanOrEqual(1000);
    // WebSockets outlive the heartbeat interval (30 s) without being cut as idle.
    expect(haproxy).toMatch(/^\s*timeout tunnel 1h$/m);
  });

  it('HAProxy’s bind port is what compose publishes for it', () => {
    const bind = Number(/^\s*bind :(\d+)$/m.exec(haproxy)?.[1]);
    const ports = published(compose.services.haproxy?.ports);
    expect(ports.map((p) => p.container[0])).toContain(bind);
    expect(compose.services.haproxy?.volumes).toContain(
      './haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro',
    );
  });

  it('each node publishes its own RTC range, the same on host and container, UDP and TCP, announced with PUBLIC_IP', () => {
    const ranges: [number, number][] = [];
    for (const [name, svc] of nodes) {
      const env = svc.environment ?? {};
      const range: [number, number] = [Number(env.RTC_MIN_PORT), Number(env.RTC_MAX_PORT)];
      ranges.push(range);
      const ports = published(svc.ports);
      for (const proto of ['udp', 'tcp']) {
        expect(ports, `${name} ${proto}`).toContainEqual({ host: range, container: range, proto });
      }
      expect(env.MEDIASOUP_ANNOUNCED_ADDRESS).toContain('${PUBLIC_IP');
      expect(env.MEDIASOUP_LISTEN_IP).toBe('0.0.0.0');
    }
    const [[a0, a1], [b0, b1]] = ranges as [[number, number], [number, number]];
    expect(a1 < b0 || b1 < a0).toBe(true);
  });

  it('coturn shares the TURN secret, and its ports do not overlap the media ranges', () => {
    const cmd = compose.services.coturn?.command ?? [];
    expect(cmd).toContain('--use-auth-secret');
    expect(cmd).toContain('--static-auth-secret=${TURN_SECRET}');
    for (const [, svc] of nodes) expect(svc.environment?.TURN_SECRET).toMatch(/^\$\{TURN_SECRET/);
    const min = Number(cmd.find((c) => c.startsWith('--min-port='))?.split('=')[1]);
    const max = Number(cmd.find((c) => c.startsWith('--max-port='))?.split('=')[1]);
    expect(published(compose.services.coturn?.ports)).toContainEqual({
      host: [min, max],
      container: [min, max],
      proto: 'udp',
    });
    for (const [, svc] of nodes) {
      const env = svc.environment ?? {};
      expect(max < Number(env.RTC_MIN_PORT) || min > Number(env.RTC_MAX_PORT)).toBe(true);
    }
  });

  it('stopping waits for the drain: compose and systemd give more than SHUTDOWN_TIMEOUT_MS', () => {
    for (const [, svc] of nodes) {
      const timeoutS = Number(svc.environment?.SHUTDOWN_TIMEOUT_MS) / 1000;
      expect(seconds(svc.stop_grace_period ?? '10s')).toBeGreaterThan(timeoutS);
      expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1])).toBeGreaterThan(timeoutS);
    }
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/parley\/%i\.env$/m);
  });

  it('recordings go where the node may write, shared by both nodes (compose: one volume; systemd: its StateDirectory)', () => {
    // The image runs as an unprivileged user and /app belongs to root: the default RECORDINGS_DIR
    // (.parley/recordings, relative) is not writable there, so the image sets its own, creates it
    // for that user, and compose mounts one named volume there on every node.
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const user = /^USER (\S+)$/m.exec(runtime)?.[1];
    const imageDir = /^ENV .*\bRECORDINGS_DIR=(\S+)/m.exec(runtime)?.[1];
    expect(user).toBeTruthy();
    expect(imageDir).toMatch(/^\//);
    const made = /^RUN mkdir -p (\S+) && chown -R (\S+):\S+ (\S+)$/m.exec(runtime);
    expect(made?.[1]).toBe(imageDir);
    expect(made?.[2]).toBe(user);
    expect(imageDir?.startsWith(`${made?.[3]}/`)).toBe(true);
    // USER comes after the directory is made (a RUN as that user could not chown it).
    expect(runtime.indexOf('RUN mkdir -p')).toBeLessThan(runtime.indexOf(`USER ${user}`));
    const mounts = nodes.map(([, svc]) => {
      const dir = svc.environment?.RECORDINGS_DIR;
      expect(dir).toBe(imageDir);
      return (svc.volumes ?? []).find((v) => v.endsWith(`:${dir}`));
    });
    expect(mounts[0]).toBeDefined();
    expect(new Set(mounts).size).toBe(1);
    const volume = mounts[0]!.split(':')[0];
    expect(volume).not.toMatch(/^[./]/); // a named volume, not a host path
    expect(Object.keys(compose.volumes ?? {})).toContain(volume);

    // systemd: ProtectSystem=strict makes /opt/parley read-only; the unit points RECORDINGS_DIR
    // into the StateDirectory it asks for (writable by User=, one for every instance).
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
    const state = /^StateDirectory=(\S+)$/m.exec(unit)?.[1];
    const unitDir = /^Environment=RECORDINGS_DIR=(\S+)$/m.exec(unit)?.[1];
    expect(state).toBeTruthy();
    expect(unitDir?.startsWith(`/var/lib/${state}/`)).toBe(true);
    expect(loadConfig({ JWT_SECRET: 'x'.repeat(32), RECORDINGS_DIR: unitDir }).recording.dir).toBe(unitDir);
  });

  it('the env example sets only variables the server reads (or compose substitutes)', () => {
    const names = [...read('deploy/parley.env.example').matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map(
      (m) => m[1],
    );
    for (const name of names) expect([...ENV_VARS, 'PUBLIC_IP']).toContain(name);
  });

  it('the README "Deploy" section names every port to open and every file in deploy/', () => {
    const deploy = readme.slice(readme.indexOf('## Deploy'));
    expect(deploy.length).toBeGreaterThan(0);
    const ports = [
      ...published(compose.services.haproxy?.ports),
      ...nodes.flatMap(([, s]) => published(s.ports)),
      ...published(compose.services.coturn?.ports),
    ];
    for (const p of ports) {
      const text = p.host[0] === p.host[1] ? `${p.host[0]}` : `${p.host[0]}-${p.host[1]}`;
      expect(deploy, `port ${text}`).toContain(text);
    }
    for (const f of [
      'deploy/haproxy.cfg',
      'deploy/docker-compose.yml',
      'deploy/parley@.service',
      'deploy/parley.env.example',
    ]) {
      expect(deploy).toContain(f);
    }
  });
});
