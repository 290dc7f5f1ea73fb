import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminService } from './admin/admin-service.js';
import { TokenIssuer } from './auth/token-issuer.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { CallRelay } from './calls/call-relay.js';
import { defaults } from './config/defaults.js';
import type { Config } from './config/env.js';
import type { StationManifest } from './config/manifest.js';
import type { Readiness } from './http/health.js';
import { createAdminApi } from './http/admin-api.js';
import { createHttpHandler } from './http/http-app.js';
import { createRecordingsApi } from './http/recordings-api.js';
import { ProxyTrust } from './http/client-address.js';
import { SocketGuard, socketReserve } from './http/socket-guard.js';
import { closeHttp, runShutdown } from './lifecycle/shutdown.js';
import { background } from './lifecycle/background.js';
import { logLinesDropped, type Logger } from './logger.js';
import { MediaPlane } from './media/media-plane.js';
import { MediaService } from './media/media-service.js';
import { WorkerPool } from './media/worker-pool.js';
import { Metrics } from './metrics/metrics.js';
import { FloorControl } from './ptt/floor-control.js';
import { PttRecorder } from './recording/ptt-recorder.js';
import { RecordingSweeper } from './recording/recording-sweeper.js';
import { RoomCatalog } from './rooms/room-catalog.js';
import { RoomService } from './rooms/room-service.js';
import { SessionManager } from './sessions/session-manager.js';
import { Dispatcher } from './signaling/dispatcher.js';
import { Gateway } from './signaling/gateway.js';
import { MemoryRecordings } from './state/memory/memory-recordings.js';
import { RateLimits } from './signaling/rate-limits.js';
import { MemoryState } from './state/memory/memory-state.js';
import type { RecordingIndex } from './state/recording-index.js';
import type { RedisState } from './state/redis/redis-state.js';
import type { ClusterLink } from './cluster/cluster-link.js';
import { BusRouter } from './cluster/bus-router.js';
import { CachedDirectory } from './cluster/directory-cache.js';
import { NodeRegistry } from './cluster/node-registry.js';
import { BusPeers } from './cluster/bus-peers.js';
import { BUS_BATCH_FORMAT } from './cluster/bus.js';
import { UserDelivery } from './sessions/user-delivery.js';
import type { StateStore } from './state/state-store.js';
import { systemClock, type Clock } from './time/clock.js';
import { Webhooks } from './webhooks/webhooks.js';

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
    registry: NodeRegistry | null;
    metrics: Metrics;
    admin: AdminService;
    sockets: SocketGuard;
    recorder: PttRecorder;
    sweeper: RecordingSweeper;
  };
}

export interface ServerOptions {
  config: Config;
  manifest: StationManifest;
  log: Logger;
  /** Collect process metrics (CPU, memory, event loop). Off in tests that run many servers. */
  processMetrics?: boolean;
  /** Directory of the built demo page served at `/` (default web/dist); null serves none. */
  webRoot?: string | null;
  /** Development only: lets the demo page mint tokens at /api/dev-token (never in production). */
  devTokenIssuer?: TokenIssuer | null;
  /** Time for leases, grace windows, talk limits and reaping. Default: the system clock. */
  clock?: Clock;
}

/** Wires the components together. Behaviour lives in the components, not here. */
export async function createServer({
  config,
  manifest,
  log,
  processMetrics = false,
  webRoot,
  devTokenIssuer = null,
  clock = systemClock,
}: ServerOptions): Promise<ParleyServer> {
  let readiness: Readiness = 'starting';
  const startedAt = clock.now();
  const metrics = new Metrics({
    collectDefaults: processMetrics,
    gcDurations: config.metrics.gcDurations,
    droppedLogLines: () => logLinesDropped(log),
  });
  const verifier = await TokenVerifier.create(config.auth);
  const { cluster: cc } = config;
  let store: StateStore;
  let redis: RedisState | null = null;
  let cluster: ClusterLink | null = null;
  let directoryCache: CachedDirectory | null = null;
  let busPeers: BusPeers | null = null;
  if (cc.redisUrl) {
    // Loaded only for a Redis deployment: a node on the memory backend never loads ioredis (its
    // heap, which V8 marks on every major GC, is ~2 MB smaller; docs/benchmarks.md, twelfth pass).
    const [{ RedisState }, { RedisDirectory }, { RedisBus }] = await Promise.all([
      import('./state/redis/redis-state.js'),
      import('./state/redis/redis-directory.js'),
      import('./state/redis/redis-bus.js'),
    ]);
    redis = await RedisState.connect(cc.redisUrl, {
      prefix: cc.redisPrefix,
      cluster: cc.redisCluster,
      log: log.child({ component: 'redis' }),
    });
    store = redis;
    const registryRecords = new RedisDirectory(redis);
    busPeers = new BusPeers({ lookup: (nodeId) => registryRecords.node(nodeId), log });
    const bus = await RedisBus.create(redis, cc.nodeId, log.child({ component: 'bus' }), busPeers);
    directoryCache = new CachedDirectory({ inner: registryRecords, bus, clock, log });
    cluster = { nodeId: cc.nodeId, directory: directoryCache, bus };
  } else {
    store = new MemoryState({ clock });
  }
  const pool = new WorkerPool(config.media, log, clock);
  await pool.start();
  const catalog = new RoomCatalog(manifest);
  const sessions = new SessionManager({
    store,
    graceMs: config.resumeGraceMs,
    log,
    cluster,
    clock,
    maxSessionsPerUser: config.quotas.maxSessionsPerUser,
  });
  const users = new UserDelivery({ sessions, cluster });
  const rooms = new RoomService({ catalog, store, log, cluster, clock, quotas: config.quotas });
  const bus = cluster?.bus;
  const relay = new CallRelay({
    users,
    rooms,
    store,
    metrics,
    log,
    clustered: cluster !== null,
    clock,
    config: config.calls,
    ...(bus && {
      callChanged: (callKey: string) =>
        background(
          bus.publishToAll({ t: 'call-record', callKey }, null),
          log,
          'tell the cluster a call changed',
        ),
    }),
  });
  const media = new MediaService({
    pool,
    config: config.media,
    catalog,
    rooms,
    log,
    clock,
    quotas: config.quotas,
  });
  // A room's media lives on one node (its owner in the cluster); the plane forwards to it.
  const plane = new MediaPlane({ media, rooms, users, cluster, log, clock, ownerTtlMs: cc.nodeTtlMs * 2 });
  const floor = new FloorControl({
    store,
    rooms,
    media: plane,
    catalog,
    config: config.ptt,
    log,
    cluster,
    clock,
  });
  // PTT recording: the node hosting a room's media records its bursts; metadata sits in the state backend.
  const recordings: RecordingIndex = redis
    ? new (await import('./state/redis/redis-recordings.js')).RedisRecordings(
        redis,
        log.child({ component: 'recordings' }),
      )
    : new MemoryRecordings();
  const recorder = new PttRecorder({
    config: config.recording,
    catalog,
    index: recordings,
    store,
    rooms,
    // A burst ended by a floor change is announced after that change's reply and broadcast.
    floorSettled: (roomId) => floor.settled(roomId),
    nodeId: cc.nodeId,
    log: log.child({ component: 'recorder' }),
    clock,
  });
  const directory = cluster?.directory;
  const sweeper = new RecordingSweeper({
    index: recordings,
    catalog,
    config: config.recording,
    recorder,
    nodeId: cc.nodeId,
    ...(directory
      ? {
          nodeAlive: async (nodeId: string) =>
            (await directory.nodes()).some((n) => n.info.nodeId === nodeId && n.alive),
        }
      : {}),
    log: log.child({ component: 'recordings' }),
    clock,
  });
  const webhooks = new Webhooks({
    config: config.webhooks,
    nodeId: cc.nodeId,
    registry: metrics.registry,
    log: log.child({ component: 'webhooks' }),
    clock,
  });
  const registry = cluster
    ? new NodeRegistry({
        directory: cluster.directory,
        store,
        handler: {
          nodeDead: (nodeId) => {
            directoryCache?.onNodeDead(nodeId);
            plane.onNodeDead(nodeId);
          },
          floorMayBeFree: (roomId) => floor.announceIfFree(roomId),
          memberGone: (roomId, sessionId) => rooms.reapRemote(roomId, sessionId),
          nodeReaped: (nodeId) => webhooks.nodeDown(nodeId, 'dead'),
        },
        log,
        clock,
        info: {
          nodeId: cc.nodeId,
          startedAt: clock.now(),
          address: `${config.host}:${config.port}`,
          bus: BUS_BATCH_FORMAT,
        },
        ...(busPeers ? { peers: busPeers } : {}),
        nodeTtlMs: cc.nodeTtlMs,
        resumeGraceMs: config.resumeGraceMs,
        lockTtlMs: config.ptt.lockTtlMs,
      })
    : null;
  const admin = new AdminService({
    sessions,
    rooms,
    floor,
    media,
    relay,
    users,
    store,
    cluster,
    nodeId: cc.nodeId,
    // Minting needs the signing key: only an HS256 server holds one.
    issuer:
      config.auth.alg === 'HS256' && config.auth.secret
        ? new TokenIssuer({ secret: config.auth.secret })
        : null,
    auth: config.auth,
    clock,
    log: log.child({ component: 'admin' }),
  });
  if (cluster) {
    new BusRouter(
      cluster.bus,
      {
        user: (h, f) => users.onRemoteDelivery(h.userId, f, h),
        room: (h, f) => rooms.onRemoteBroadcast(h.roomId, f, h.except),
        directory: (h) => directoryCache?.onUserChanged(h.userId),
        callRecord: (h) => relay.onRecordChanged(h.callKey),
        sessionMoved: (h, from) => sessions.onSessionMoved(h.sessionId, from),
        handoffFrame: (h, f) => sessions.onHandoffFrame(h.sessionId, f),
        handoffDone: (h) => sessions.onHandoffDone(h.sessionId, h.missedFrames),
        floor: (h) => floor.onRemotePreemption(h.roomId, h.fence, h.by),
        mediaRpc: (h, from) => plane.onRpc(h, from),
        mediaReply: (h) => plane.onReply(h),
        mediaLeft: (h) => plane.onGuestLeft(h.sessionId, h.roomId),
        adminRpc: (h) => admin.rpc.onRequest(h),
        adminReply: (h) => admin.rpc.onReply(h),
      },
      log,
    );
  }
  // After a Redis outage (its data may be gone): write back what this node knows, then tell our
  // members who holds each floor (floor changes could not cross nodes meanwhile).
  redis?.hooks.on('restored', [
    [
      'write state back, then resync floors',
      () =>
        sessions
          .republish()
          .then(() => rooms.republish())
          .then((roomIds) => floor.announceCurrent(roomIds)),
    ],
  ]);

  // Who hears what, in which order. Each event's listeners run one after another, in this order;
  // a failing one is logged and the rest still run (events/hooks.ts).
  sessions.hooks.on('ended', [
    ['rooms: leave every room', rooms.onSessionEnded],
    ['calls: hang up the other sides', relay.onSessionEnded],
  ]);
  sessions.hooks.on('suspended', [
    ['floor: a dropped speaker stops holding the floor', floor.onSuspended],
    // After the floor: the speaker's producer is paused before its transports go.
    ['media: release the session’s transports (RTC ports) for the grace window', plane.onSuspended],
  ]);
  sessions.hooks.on('resumed', [['media: tell the rooms whose media was released', plane.onResumed]]);
  sessions.hooks.on('adopted', [
    ['rooms: rebuild memberships from shared state', rooms.onSessionAdopted],
    // Needs the memberships rebuilt just above.
    ['floor: release a floor the session held on its old node', floor.onAdopted],
  ]);
  sessions.hooks.on('movedAway', [['rooms: forget it here quietly', rooms.onSessionMovedAway]]);
  rooms.hooks.on('left', [
    // The speaker's producer is paused before its transports go.
    ['floor: release the floor, leave the queue', floor.onGone],
    ['media: close the member’s transports', plane.onLeft],
  ]);
  // Webhooks hear what each component announces once across the cluster (webhooks/webhooks.ts).
  rooms.hooks.on('memberJoined', [['webhooks: room.started, participant.joined', webhooks.memberJoined]]);
  rooms.hooks.on('memberLeft', [['webhooks: participant.left, room.finished', webhooks.memberLeft]]);
  floor.hooks.on('granted', [['webhooks: ptt.granted', webhooks.floorGranted]]);
  floor.hooks.on('released', [['webhooks: ptt.released', webhooks.floorReleased]]);
  floor.hooks.on('revoked', [['webhooks: ptt.revoked', webhooks.floorRevoked]]);
  floor.hooks.on('preempted', [['webhooks: ptt.preempted', webhooks.floorPreempted]]);
  relay.hooks.on('started', [['webhooks: call.started', webhooks.callStarted]]);
  relay.hooks.on('answered', [['webhooks: call.answered', webhooks.callAnswered]]);
  relay.hooks.on('ended', [['webhooks: call.ended', webhooks.callEnded]]);
  pool.hooks.on('died', [['media: close the rooms whose media used the dead worker', media.onWorkerDied]]);
  media.hooks.on('opened', [['cluster: claim the room’s media', plane.onMediaOpened]]);
  media.hooks.on('floorOn', [['recording: a burst starts', recorder.onFloorOn]]);
  media.hooks.on('floorOff', [['recording: the burst ends', recorder.onFloorOff]]);
  recorder.hooks.on('ready', [['webhooks: recording.ready', webhooks.recordingReady]]);
  media.hooks.on('closed', [
    ['recording: a burst whose media went ends', recorder.onMediaClosed],
    ['cluster: give the room’s media up', plane.onMediaClosed],
    ['floor: the speaker loses a floor whose media died', floor.onMediaClosed],
  ]);
  const dispatcher = new Dispatcher({
    config,
    log,
    metrics,
    verifier,
    sessions,
    rooms,
    relay,
    media: plane,
    floor,
    clock,
  });
  const { limits } = config;
  const proxies = new ProxyTrust(config.trustProxy);
  const sockets: SocketGuard = new SocketGuard({
    maxConnections: limits.maxConnections,
    maxConnectionsPerIp: limits.maxConnectionsPerIp,
    // The gateway is built just below; this runs only once sockets arrive.
    webSocketsFrom: (address: string): number => gateway.connectionsFrom(address),
    proxies,
    headersTimeoutMs: limits.upgradeHeadersTimeoutMs,
    reserve: socketReserve(limits.maxConnections, defaults.socketReserveFraction, defaults.socketReserveMin),
    reservePerAddress: defaults.socketReservePerAddress,
    log: log.child({ component: 'sockets' }),
    metrics,
  });
  const gateway: Gateway = new Gateway({
    config,
    log,
    metrics,
    verifier,
    sessions,
    dispatcher,
    admission: sockets,
    proxies,
    rateLimits: new RateLimits({ perSec: limits.rateLimitPerSec, burst: limits.rateLimitBurst, clock }),
  });

  const http = createHttpServer(
    // Hardening fix (test/hardening/abuse.test.ts, slowloris): Node enforces headersTimeout and
    // requestTimeout only when it sweeps its connections, every connectionsCheckingInterval (30 s by
    // default), so a dribbling client was cut off after 30-40 s instead of upgradeHeadersTimeoutMs (10 s).
    // Sweep every second so the guard holds within a second of its configured value.
    { connectionsCheckingInterval: defaults.httpConnectionsCheckingIntervalMs },
    sockets.wrap(
      createHttpHandler({
        config,
        log,
        metrics,
        verifier,
        manifest,
        ...(webRoot !== undefined ? { webRoot } : {}),
        devTokenIssuer,
        recordings: createRecordingsApi({
          index: recordings,
          dir: recorder.dir,
          verifier,
          log: log.child({ component: 'recordings' }),
        }),
        admin: createAdminApi({
          handlers: admin.handlers,
          verifier,
          apiKey: config.admin.apiKey,
          proxies,
          corsOrigin: config.corsOrigin,
          metrics,
          log: log.child({ component: 'admin' }),
        }),
        health: {
          readiness: () => readiness,
          connections: () => gateway.connectionCount,
          workers: () => pool.size,
          sfu: () => pool.capacity(),
          redis: () => (redis ? (redis.ready() ? 'ok' : 'down') : null),
          nodeId: cc.nodeId,
        },
      }),
    ),
  );
  // Slowloris guard: a client must finish its request (or upgrade) headers quickly. Node's own
  // timeouts only act on sockets that send bytes; the socket guard covers silent ones and the caps.
  http.headersTimeout = config.limits.upgradeHeadersTimeoutMs;
  http.requestTimeout = config.limits.upgradeHeadersTimeoutMs * 2;
  http.keepAliveTimeout = defaults.httpKeepAliveTimeoutMs;
  sockets.attach(http);
  gateway.attach(http);

  let shutdownPromise: Promise<void> | null = null;
  /** Sessions still here when the drain stopped waiting for them to resume elsewhere. */
  let leftBehind = 0;

  return {
    http,
    listen() {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          const address = http.address() as AddressInfo;
          const ready = () => {
            readiness = 'ok';
            if (manifest.channels.some((c) => c.record)) sweeper.start();
            webhooks.nodeUp(`${address.address}:${address.port}`, startedAt);
            log.info(
              { host: address.address, port: address.port, node: cc.nodeId, state: store.kind },
              'listening',
            );
            resolve(address);
          };
          if (!registry) return ready();
          registry.start().then(ready, reject);
        });
      });
    },
    shutdown() {
      shutdownPromise ??= runShutdown(
        [
          // /health says 503 from here on: a load balancer takes the node out of rotation.
          {
            name: 'drain',
            run: () => {
              readiness = 'draining';
              webhooks.nodeDown(cc.nodeId, 'shutdown');
            },
          },
          { name: 'stop-accepting', run: () => gateway.stopAccepting() },
          // In a cluster, sessions outlive this node: their clients resume on another one.
          { name: 'hand-off-sessions', run: () => sessions.handOff() },
          {
            name: 'close-websockets',
            run: () =>
              gateway.closeAll(
                config.shutdownReconnectHintMs,
                Math.min(defaults.shutdownWebSocketWaitMs, config.shutdownTimeoutMs / 2),
                sessions.handingOff,
              ),
          },
          {
            // Keep buffering for the handed-over sessions (and passing it on) until their clients
            // have resumed elsewhere, within a bounded wait.
            name: 'await-resumes-elsewhere',
            run: async () => {
              if (!sessions.handingOff) return;
              const waitMs = Math.min(
                config.resumeGraceMs,
                config.shutdownTimeoutMs * defaults.shutdownHandoffFraction,
              );
              leftBehind = await sessions.awaitHandedOver(waitMs);
              if (leftBehind > 0)
                log.warn(
                  { sessions: leftBehind },
                  'sessions not resumed elsewhere yet; the cluster reaps them',
                );
            },
          },
          { name: 'close-http', run: () => closeHttp(http) },
          { name: 'end-sessions', run: () => sessions.close() },
          { name: 'close-rooms', run: () => rooms.close() },
          { name: 'close-floors', run: () => floor.close() },
          {
            name: 'finish-recordings',
            run: async () => {
              await recorder.close();
              await sweeper.close();
            },
          },
          {
            name: 'close-media',
            run: () => {
              plane.close();
              media.close();
              pool.close();
            },
          },
          { name: 'close-admin', run: () => admin.close() },
          { name: 'flush-webhooks', run: () => webhooks.close(defaults.webhookShutdownFlushMs) },
          { name: 'leave-cluster', run: async () => registry?.close({ leftSessions: leftBehind > 0 }) },
          {
            name: 'close-state',
            run: async () => {
              await cluster?.bus.close();
              await store.close();
            },
          },
        ],
        log,
      );
      return shutdownPromise;
    },
    internalsForTesting: {
      gateway,
      sessions,
      rooms,
      relay,
      media,
      pool,
      floor,
      store,
      metrics,
      registry,
      admin,
      sockets,
      recorder,
      sweeper,
    },
  };
}
