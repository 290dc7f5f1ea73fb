import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';

/**
 * Every default in one place, with units in the names. Environment variables (see env.ts and
 * the README's configuration table) override those that have one; the rest are fixed here.
 * A function is a default computed at start-up.
 */
export const defaults = {
  port: 3000,
  host: '0.0.0.0',
  logLevel: 'info',
  nodeEnv: 'development',

  jwtAlg: 'HS256',
  /** Accepted clock skew for exp/nbf. */
  jwtClockToleranceS: 5,
  /**
   * IN_BAND_AUTH: an upgrade without a token opens, and has authTimeoutMs to send auth:request.
   * false gives the earlier PTT server's behaviour: 401 at the upgrade.
   */
  inBandAuth: true,
  /**
   * Accept JWTs that carry no `exp` (they would never expire). Off everywhere, development included:
   * Parley's own issuer, CLI and dev tokens always set `exp`, so only a foreign identity provider
   * minting permanent tokens needs it, and then the operator says so.
   */
  allowTokensWithoutExp: false,
  /**
   * LEGACY_TOKEN_SUBPROTOCOL: off, because the server must then select the token as the
   * subprotocol, which echoes it in the Sec-WebSocket-Protocol response header (proxy logs, HAR
   * files, browser dev tools). Browsers should offer `parley` beside the token instead.
   */
  legacyTokenSubprotocol: false,

  /**
   * AUTH_EXPIRING_LEAD_MS: `auth:expiring` goes out this long before the connection's token expires,
   * so the client can answer with `auth:request {token}` in time; at `exp` plus jwtClockToleranceS
   * a connection that did not is closed with 4401. 60 s covers a token fetch from a slow backend.
   */
  authExpiringLeadMs: 60_000,
  /**
   * CALL_POLICY: whom a `call:offer` may ring. `shared-room` (default): only users who share a room
   * with the caller, so a stranger cannot ring (or probe the presence of) any user id; the demo and
   * the SDK call from a member list, which is such a room. `any`: every user (the earlier calls
   * service had no rooms; docs/migration.md).
   */
  callPolicy: 'shared-room' as 'any' | 'shared-room',
  /**
   * Per (sender, recipient) relay budget (call:* and in-room sdp/ice relays), on the sender's node:
   * a token bucket of bytes and one of messages. A sender past it gets RELAY_BUDGET_EXCEEDED and
   * the message is not delivered, so no sender can fill a receiver's send buffer
   * (MAX_BUFFERED_BYTES, 1 MiB) and get it dropped. Burst 256 KiB refilled at 64 KiB/s covers a
   * video call's offer, answer, renegotiations and candidates many times over.
   */
  relayBudgetBytesPerSec: 64 * 1024,
  relayBudgetBurstBytes: 256 * 1024,
  relayBudgetMessagesPerSec: 50,
  relayBudgetBurstMessages: 200,
  /** (sender, recipient) pairs a node's relay budget remembers before it forgets full (idle) ones (relay-budget.ts). */
  relayBudgetPruneAtPairs: 10_000,
  /**
   * How often the `parley_nodejs_eventloop_lag_*` histogram samples the event loop (metrics.ts): a
   * timer in the main loop. prom-client's 10 ms default was 100 wake-ups a second on an idle node.
   */
  eventLoopMonitoringPrecisionMs: 100,
  /**
   * METRICS_GC: the GC duration histogram is off, because observing every collection made a
   * relayed message 6–8 % dearer (process-metrics.ts).
   */
  metricsGcDurations: false,

  /** TURN_URIS: none, so TURN credentials carry no URIs. */
  turnUris: [] as string[],
  turnTtlS: 86_400,

  /** Largest accepted WebSocket frame; bigger frames close the socket with 1009. 64 KiB. */
  maxFrameBytes: 64 * 1024,
  /** Token bucket refill rate per connection; 0 disables rate limiting. */
  rateLimitPerSec: 100,
  /** Token bucket size: how many messages a connection may send at once. */
  rateLimitBurst: 200,
  /**
   * Sockets per remote address, counted from accept: its open HTTP sockets (kept-alive ones
   * included) plus its WebSockets; 0 disables the limit. Sockets from a trusted proxy
   * (TRUST_PROXY) are not counted at accept; their WebSockets are, by forwarded address.
   */
  maxConnectionsPerIp: 100,
  /**
   * Open sockets per node, counted from accept; 0 disables the cap. Keep it under the process's
   * file-descriptor limit (`ulimit -n`, which Node raises to the hard limit) less what mediasoup,
   * Redis and the reserve below need.
   */
  maxConnections: 10_000,
  /**
   * Sockets over a cap are still accepted, up to this share of maxConnections (at least
   * socketReserveMin), but may only ask for /health: a load balancer still sees a full node.
   */
  socketReserveFraction: 0.1,
  socketReserveMin: 16,
  /**
   * Of that reserve, sockets one address may hold at once (a trusted proxy excepted): enough for a
   * load balancer's health checks, too few for one address to take the reserve from everyone else.
   */
  socketReservePerAddress: 4,
  /** A socket answered at accept (429/503) is closed this long after, if its client has not closed it first (socket-guard.ts). */
  socketAnsweredLingerMs: 1_000,
  /** A connection whose unsent data passes this is closed with 4008 instead of buffering without bound. 1 MiB. */
  maxBufferedBytes: 1024 * 1024,
  /**
   * How long a client closed for backpressure (4008) has to read its backlog and answer the close
   * frame before the socket is terminated. Writing stopped at the close, so it holds at most
   * MAX_BUFFERED_BYTES plus one frame meanwhile.
   */
  backpressureCloseTimeoutMs: 2_000,
  /** How long a peer has to answer the server's close frame before the socket is terminated. */
  closeTimeoutMs: 5_000,
  /** Same, for a flooder closed with 1008: it is no longer read, so it cannot answer; cut it off sooner. */
  floodCloseTimeoutMs: 1_000,
  /** WebSocket ping interval. */
  heartbeatIntervalMs: 30_000,
  /** A connection silent (no pong, no message) this long is terminated. */
  heartbeatTimeoutMs: 75_000,
  /** How long a dropped session may be resumed with its resume token. */
  resumeGraceMs: 15_000,
  /** Deadline for auth:request on a connection opened without a token. */
  authTimeoutMs: 5_000,
  /**
   * Every accepted socket must complete a request's or an upgrade's headers this long after accept
   * (or after its last response, for keep-alive) or it is destroyed, whether it sends bytes or not.
   */
  upgradeHeadersTimeoutMs: 10_000,
  /** Idle keep-alive HTTP sockets are closed after this long (Node's default, made explicit). */
  httpKeepAliveTimeoutMs: 5_000,
  /** Hard deadline for graceful shutdown before the process is forced to exit. */
  shutdownTimeoutMs: 10_000,
  /** Base of the reconnect hint sent in server:shutdown; each client gets base + random(0..base). */
  shutdownReconnectHintMs: 2_000,
  /**
   * Cluster drain: how long a stopping node keeps serving the sessions it handed over (buffering
   * for them) while their clients resume on other nodes, as a fraction of shutdownTimeoutMs (and
   * never longer than resumeGraceMs).
   */
  shutdownHandoffFraction: 0.6,
  /**
   * TRUST_PROXY: reverse proxies in front of the node whose X-Forwarded-For entries count (a hop
   * count, or a list of their addresses/CIDR ranges). 0: none, the socket's address is the client's.
   */
  trustProxy: 0,
  /** Value of Access-Control-Allow-Origin for the HTTP API. */
  corsOrigin: '*',

  /** mediasoup worker processes: one per core. 0 (MEDIASOUP_WORKERS=0) disables the SFU. */
  mediasoupWorkers: (): number => availableParallelism(),
  mediasoupLogLevel: 'warn',
  /** Address mediasoup transports bind to. 127.0.0.1 suits one machine; use 0.0.0.0 + an announced address in deployments. */
  mediasoupListenIp: '127.0.0.1',
  rtcMinPort: 40_000,
  rtcMaxPort: 49_999,
  /**
   * Consumers one worker may carry before new ones go to another worker. Measured: one mediasoup
   * 3.19 worker delivers 100% up to ~1,000 SRTP audio consumers and collapses beyond (1,500 → 49%).
   */
  maxConsumersPerWorker: 800,
  /**
   * Video producers (camera and screen) one conference room may hold; one more is refused with
   * PRODUCE_ERROR. Every video producer is consumed by everyone, so this bounds a room's fan-out.
   */
  maxVideoProducersPerRoom: 16,
  /**
   * Cap on what one WebRTC transport may receive from its client, in bits per second (mediasoup's
   * maxIncomingBitrate, enforced with REMB/transport-cc towards the sender); 0: no cap. 5 Mbit/s
   * carries a 3-layer camera (1.85 Mbit/s) plus a screen share.
   */
  transportMaxIncomingBitrate: 5_000_000,
  /**
   * Conference rooms: a newly announced active speaker (room:active-speaker) stays announced at
   * least this long; changes meanwhile are held back and the latest is announced when it ends.
   */
  activeSpeakerHoldMs: 1_500,
  /** How often mediasoup's ActiveSpeakerObserver re-evaluates the dominant speaker. */
  activeSpeakerIntervalMs: 300,
  /**
   * Video consumers one worker may carry (to count inside maxConsumersPerWorker, not on top of it).
   * Measured (docs/benchmarks.md, scenario 5C: one mediasoup 3.19 worker, VP8 30 fps ~800 kbps
   * one layer, everyone consuming everyone, 2-vCPU shared machine): rooms of 3 delivered every
   * packet in time up to 60 rooms = 360 consumers (~0.7 of a core, ~18 µs per forwarded packet)
   * and fell behind at 480; rooms of 10 up to 6 rooms = 540 and fell behind at 630. Rooms of 3
   * are the dearer case (one producer per two consumers), so the budget is their last clean step.
   * Enforced in MediaService.consume, on the worker's count (worker-pool.ts), and used for placement:
   * a conference room's receive transport goes first to a worker under it (MediaRoom.slotForReceiver).
   */
  maxVideoConsumersPerWorker: 360,
  /**
   * Quotas (issue 13, High 2 and Medium 1): what one user or one session may hold, so that nobody
   * exhausts the RTC ports, the rooms or a channel's seats for everyone else. A request past one is
   * refused with QUOTA_EXCEEDED ({quota, limit} in its details) and nothing else changes.
   *
   * Sessions of one user at once, suspended ones (dropped, inside the resume grace window) included.
   * At the cap a new session first ends the user's oldest suspended session (its resume then fails,
   * its rooms hear it leave); if all are live, the new connection is closed with 4429 QUOTA_EXCEEDED.
   * Counted across nodes with Redis (the cluster directory).
   */
  maxSessionsPerUser: 10,
  /** Rooms one session may be in at once; one more room:join gets QUOTA_EXCEEDED. */
  maxRoomsPerSession: 16,
  /**
   * Ad-hoc rooms (not in the manifest) one user may have created that still exist (an ad-hoc room
   * exists while it has members): a join that would create one more gets QUOTA_EXCEEDED.
   */
  maxAdHocRoomsPerUser: 8,
  /**
   * WebRTC transports one user may hold on a media node, across all its sessions and rooms (each
   * takes RTC ports; mediasoup-client needs two per room). Beside maxTransportsPerMember (per room).
   */
  maxTransportsPerUser: 32,
  /** Producers one user may hold on a media node, across all its sessions and rooms. */
  maxProducersPerUser: 32,
  /** Consumers one user may hold on a media node, across all its sessions and rooms. */
  maxConsumersPerUser: 1_000,
  /** PTT speaker lock TTL; the holder renews it every third of this while talking. */
  pttLockTtlMs: 5_000,
  /** Longest PTT talk burst unless the channel sets maxTalkMs. */
  pttMaxTalkMs: 60_000,
  /** A node that has not heartbeated into Redis for this long is dead; it heartbeats every third of it. */
  nodeTtlMs: 3_000,
  /** This node's id in the cluster registry: the host name plus a random suffix. */
  nodeId: (): string =>
    `${hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 40)}-${randomBytes(4).toString('hex')}`,

  /** REDIS_CLUSTER: REDIS_URL is one Redis (or Sentinel-fronted), not a list of Cluster seeds. */
  redisCluster: false,
  /** Prefix of every Redis key and channel. */
  redisPrefix: 'parley:',
  /** Redis client behaviour (no environment variables). */
  redis: {
    /** An operation gives up after this long (a half-open socket must not hang a handler). */
    commandTimeoutMs: 1_000,
    /** TCP connect (and handshake) timeout. */
    connectTimeoutMs: 2_000,
    /** Reconnect backoff: doubles from base up to max, with jitter, forever. */
    reconnectBaseMs: 100,
    reconnectMaxMs: 2_000,
    /** How long `connect()` waits for the first ready before giving up. */
    startupTimeoutMs: 10_000,
    /** The fence counter outlives any lock; if it expires anyway, the clock seed keeps fences growing. 7 days. */
    fenceTtlMs: 7 * 24 * 3_600_000,
  },

  // Fixed limits and timeouts (no environment variable).
  /** WebRTC transports one member may hold in one room. */
  maxTransportsPerMember: 4,
  /** Producers one member may hold in one room. */
  maxProducersPerMember: 4,
  /** Most concurrent calls one user may have tracked; the oldest is forgotten beyond it. */
  maxCallsPerUser: 32,
  /** How long a 1:1 call's record (who answered it, on which device) lives after its last step. 24 h. */
  callRecordTtlMs: 24 * 3_600_000,
  /** How long an ended call's record is kept, so late messages of its other devices are still refused. 1 min. */
  endedCallTtlMs: 60_000,
  /**
   * A node caches call records it looked up (calls/call-records.ts), dropped through the bus on
   * every change; this TTL only bounds how long a lost bus message could leave one stale.
   */
  callRecordCacheTtlMs: 5_000,
  /** Call records (or their absence) a node caches at most (oldest dropped first). */
  callRecordCacheSize: 50_000,
  /** Answered calls whose record a node keeps in memory, to route without asking shared state. */
  answeredCallCacheSize: 4_096,
  /** Lifetime of a token from /api/dev-token (development only). 1 hour. */
  devTokenTtlS: 3_600,
  /** Lifetime of a token the server signs when its caller names none (auth/token-issuer.ts). 1 hour. */
  issuedTokenTtlS: 3_600,
  /**
   * How often Node's HTTP server sweeps its connections for headersTimeout/requestTimeout (Node's
   * default is 30 s, which let a slowloris client outlive upgradeHeadersTimeoutMs by up to 30 s).
   */
  httpConnectionsCheckingIntervalMs: 1_000,
  /** Shutdown: longest wait for clients to answer the 1001 close, capped at half of shutdownTimeoutMs. */
  shutdownWebSocketWaitMs: 3_000,
  /** Shutdown: in-flight HTTP requests get this long before their sockets are closed. */
  shutdownHttpGraceMs: 1_000,
  /** A dead mediasoup worker is replaced after base × 2^attempt, at most max. */
  workerRestartBaseMs: 100,
  workerRestartMaxMs: 5_000,

  /** The stdout log stream (log-stream.ts; no environment variables). */
  log: {
    /** Bytes gathered before a write: under load, one write per ~20 lines. */
    batchBytes: 4_096,
    /** The longest a line waits for its batch to fill (the timer runs only while lines wait). */
    flushMs: 250,
    /** Most bytes one write hands the kernel (a backlog is written in pieces of this size). 1 MiB. */
    maxWriteBytes: 1024 * 1024,
    /** Bytes held while the log reader does not keep up; lines beyond it are dropped and counted. 16 MiB. */
    maxBufferedBytes: 16 * 1024 * 1024,
    /** After EAGAIN or EBUSY (a full non-blocking pipe), the write is tried again this much later. */
    retryMs: 100,
    /** A synchronous flush (exit, fatal) sleeps this long between EAGAIN retries… */
    syncRetryMs: 10,
    /** …and drops what is left (counted) once the reader has taken nothing for this long. */
    syncGiveUpMs: 1_000,
  },

  // Internal timings and bounds (not configurable by environment).
  /**
   * Deepest nesting of objects and arrays a message's payload may have; deeper is INVALID_MESSAGE
   * before any schema runs (a deeply nested rtpCapabilities once reached mediasoup and came back
   * INTERNAL with a stack trace). mediasoup's own parameters nest at most 5 levels below the payload.
   */
  maxPayloadDepth: 16,
  /** A media request forwarded to the room's owner node fails after this long (media-rpc-client.ts). */
  mediaRpcTimeoutMs: 5_000,
  /** A live connection's resume token stays valid this long (session-manager.ts). 24 h. */
  liveResumeTokenTtlMs: 24 * 3_600_000,
  /** Outbound frames kept for a suspended session (live-session.ts); beyond it the oldest go and the resume says missedFrames. */
  suspendedBufferMaxFrames: 256,
  /**
   * The same buffer's bound in bytes (live-session.ts): half of maxBufferedBytes, so its replay
   * on resume (written with backpressure) can never by itself get the socket dropped. 512 KiB.
   */
  suspendedBufferMaxBytes: 512 * 1024,
  /** An adopting node waits this long for the old node's buffer of a resumed session (session-manager.ts). */
  sessionHandoffTimeoutMs: 1_000,
  /** After a session moved away, frames that still reach its old node follow it this long (session-manager.ts). */
  movedSessionForwardMs: 10_000,
  /** Room leaves that failed while the state backend was down are retried this often (room-service.ts). */
  leaveRetryIntervalMs: 1_000,
  /** A dead node's cleanup claim lasts resumeGraceMs + pttLockTtlMs + this (node-registry.ts). */
  deadNodeClaimMarginMs: 30_000,
  /** The PTT speaker lock is renewed every third of its TTL, but no more often than this (floor-control.ts). */
  pttLockRenewMinMs: 100,
  /**
   * Where a user's sessions live is cached on each node (cluster/directory-cache.ts), dropped through
   * the bus on every change; this TTL only bounds how long a lost bus message could leave it stale.
   */
  directoryCacheTtlMs: 5_000,
  /** Users whose whereabouts a node keeps at most (oldest dropped first). */
  directoryCacheMaxUsers: 100_000,
  /** A node heartbeats every third of nodeTtlMs, but no more often than this (node-registry.ts). */
  nodeHeartbeatMinMs: 100,
  /** After a dead node's speaker lock has expired (pttLockTtlMs), wait this much more before announcing the floor free (node-registry.ts). */
  deadNodeFloorAnnounceMarginMs: 100,
  /** A removed member's token stays out of the room for its lifetime, or this long if it has no exp (room-service.ts). 24 h. */
  roomBanFallbackTtlMs: 24 * 3_600_000,
  /** A removed member's token is kept out at least this long, even if it expires sooner (room-service.ts). */
  roomBanMinTtlMs: 1_000,
  /**
   * The memory store sweeps expired resume tokens, call records and claims once a map reaches this
   * size, then again each time it doubles (state/memory/memory-state.ts).
   */
  memoryStateSweepAtEntries: 1_024,
  /** A server API operation forwarded to another node fails after this long (admin/admin-rpc.ts). */
  adminRpcTimeoutMs: 5_000,
  /** Server API requests per second per client address (token bucket), and the burst. */
  adminRateLimitPerSec: 20,
  adminRateLimitBurst: 40,
  /** Client addresses the server API's rate limiter tracks at most; past it they start afresh (a flood of addresses). */
  adminRateLimitMaxAddresses: 10_000,
  /** Largest server API request body. 64 KiB. */
  adminMaxBodyBytes: 64 * 1024,
  /** Webhook deliveries waiting (all URLs together); beyond it the oldest is dropped and counted. */
  webhookQueueMax: 10_000,
  /** Attempts per delivery (the first plus retries on 5xx, 429, timeouts and network errors). */
  webhookMaxAttempts: 6,
  /** Retry backoff: base × 2^attempt with full jitter, at most max. */
  webhookRetryBaseMs: 500,
  webhookRetryMaxMs: 30_000,
  /** One delivery attempt gives up after this long. */
  webhookTimeoutMs: 5_000,
  /** Deliveries in flight at once per URL (each room's events still go one at a time, in order). */
  webhookConcurrencyPerUrl: 8,
  /** Shutdown: how long pending webhooks (e.g. node.down) get to go out. */
  webhookShutdownFlushMs: 2_000,
  /** How long a call's start/answer/end is remembered so it is announced once across nodes (call-relay.ts). 24 h. */
  callClaimTtlMs: 24 * 3_600_000,
  /** A room's media owner claim is renewed every third of its TTL, but no more often than this (media-ownership.ts). */
  mediaOwnerRenewMinMs: 200,
  // ---- PTT recording (channels with "record": true; src/server/recording/) ----
  /** Where recorded bursts are written (RECORDINGS_DIR). Shared storage when several nodes serve them. */
  recordingsDir: '.parley/recordings',
  /** How long a recording is kept unless its channel says otherwise (RECORDING_RETENTION_HOURS). 7 days. */
  recordingRetentionHours: 168,
  /** Total size of all recordings; the oldest go first beyond it (RECORDINGS_MAX_BYTES). 1 GiB. */
  recordingsMaxBytes: 1024 * 1024 * 1024,
  /** How often the sweeper enforces retention and the size cap and finalises orphans (RECORDING_SWEEP_INTERVAL_MS). */
  recordingSweepIntervalMs: 60_000,
  /** Whole Ogg pages are written every this many packets (20 ms each): a crash loses at most 0.5 s. */
  recordingPacketsPerPage: 25,
  /** A silence (DTX) or loss up to this long is kept in the file's timeline; a longer jump is closed up. */
  recordingMaxGapMs: 10_000,
  /** GET /api/rooms/:roomId/recordings: default and largest `limit`. */
  recordingListDefaultLimit: 50,
  recordingListMaxLimit: 500,
} as const;

/** Station manifest defaults, used when PARLEY_MANIFEST is unset or the file is missing. */
export const defaultManifest = {
  name: 'Parley',
  stunUrls: ['stun:stun.l.google.com:19302'],
  allowAdHocRooms: true,
  adHocRoom: { mode: 'conference', maxParticipants: 50 },
  channels: [
    { id: 'lobby', name: 'Lobby', mode: 'conference', maxParticipants: 50 },
    { id: 'dispatch', name: 'Dispatch', mode: 'ptt', maxParticipants: 500 },
    { id: 'field-ops', name: 'Field Ops', mode: 'ptt', maxParticipants: 500 },
  ],
} as const;
