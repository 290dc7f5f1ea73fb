import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenVerifier } from './auth/token-verifier.js';
import { CallRelay } from './calls/call-relay.js';
import type { Config } from './config/env.js';
import type { StationManifest } from './config/manifest.js';
import type { Readiness } from './http/health.js';
import { createHttpHandler } from './http/http-app.js';
import { closeHttp, runShutdown } from './lifecycle/shutdown.js';
import type { Logger } from './logger.js';
import { MediaService } from './media/media-service.js';
import { WorkerPool } from './media/worker-pool.js';
import { Metrics } from './metrics/metrics.js';
import { FloorControl } from './ptt/floor-control.js';
import { RoomCatalog } from './rooms/room-catalog.js';
import { RoomService } from './rooms/room-service.js';
import { SessionManager } from './sessions/session-manager.js';
import { Dispatcher } from './signaling/dispatcher.js';
import { Gateway } from './signaling/gateway.js';
import { MemoryState } from './state/memory/memory-state.js';
import type { StateStore } from './state/state-store.js';

export interface ParleyServer {
  readonly http: Server;
  /** Listens on config.host:config.port (port 0 picks a free one) and turns ready. */
  listen(): Promise<AddressInfo>;
  /** Graceful shutdown in the reverse of start-up order. Idempotent. */
  shutdown(): Promise<void>;
  /** Internals for tests only. */
  readonly internalsForTesting: {
    gateway: Gateway;
    sessions: SessionManager;
    rooms: RoomService;
    relay: CallRelay;
    media: MediaService;
    pool: WorkerPool;
    floor: FloorControl;
    store: StateStore;
    metrics: Metrics;
  };
}

export interface ServerOptions {
  config: Config;
  manifest: StationManifest;
  log: Logger;
  /** Collect process metrics (CPU, memory, event loop). Off in tests that run many servers. */
  processMetrics?: boolean;
}

/** Wires the components together. Behaviour lives in the components, not here. */
export async function createServer({
  config,
  manifest,
  log,
  processMetrics = false,
}: ServerOptions): Promise<ParleyServer> {
  let readiness: Readiness = 'starting';
  const metrics = new Metrics({ collectDefaults: processMetrics });
  const verifier = await TokenVerifier.create(config.auth);
  const store: StateStore = new MemoryState();
  const pool = new WorkerPool(config.media, log);
  await pool.start();
  const catalog = new RoomCatalog(manifest);
  const sessions = new SessionManager(store, config.resumeGraceMs, log);
  const rooms = new RoomService(catalog, store, log);
  const relay = new CallRelay(sessions, rooms, metrics, log);
  const media = new MediaService({ pool, config: config.media, catalog, rooms, log });
  const floor = new FloorControl({ store, rooms, media, catalog, config: config.ptt, log });
  sessions.onEnded(rooms.onSessionEnded);
  sessions.onEnded(relay.onSessionEnded);
  sessions.onSuspended(floor.onSuspended);
  // Floor first: the speaker's producer is paused before its transports go.
  rooms.onLeft(floor.onGone);
  rooms.onLeft(media.onLeft);
  media.onMediaClosed(floor.onMediaClosed);
  const dispatcher = new Dispatcher({ config, log, metrics, verifier, sessions, rooms, relay, media, floor });
  const gateway = new Gateway({ config, log, metrics, verifier, sessions, dispatcher });

  const http = createHttpServer(
    createHttpHandler({
      config,
      log,
      metrics,
      verifier,
      manifest,
      health: {
        readiness: () => readiness,
        connections: () => gateway.connectionCount,
        workers: () => pool.size,
      },
    }),
  );
  // Slowloris guard: a client must finish its request (or upgrade) headers quickly.
  http.headersTimeout = config.limits.upgradeHeadersTimeoutMs;
  http.requestTimeout = config.limits.upgradeHeadersTimeoutMs * 2;
  gateway.attach(http);

  let shutdownPromise: Promise<void> | null = null;

  return {
    http,
    listen() {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          readiness = 'ok';
          const address = http.address() as AddressInfo;
          log.info({ host: address.address, port: address.port }, 'listening');
          resolve(address);
        });
      });
    },
    shutdown() {
      shutdownPromise ??= runShutdown(
        [
          { name: 'drain', run: () => void (readiness = 'draining') },
          { name: 'stop-accepting', run: () => gateway.stopAccepting() },
          {
            name: 'close-websockets',
            run: () =>
              gateway.closeAll(config.shutdownReconnectHintMs, Math.min(3_000, config.shutdownTimeoutMs / 2)),
          },
          { name: 'close-http', run: () => closeHttp(http) },
          {
            name: 'end-sessions',
            run: async () => {
              for (const s of [...sessions.all()]) await sessions.end(s, 'shutdown');
            },
          },
          { name: 'close-floors', run: () => floor.close() },
          {
            name: 'close-media',
            run: () => {
              media.close();
              pool.close();
            },
          },
          { name: 'close-state', run: () => store.close() },
        ],
        log,
      );
      return shutdownPromise;
    },
    internalsForTesting: { gateway, sessions, rooms, relay, media, pool, floor, store, metrics },
  };
}
