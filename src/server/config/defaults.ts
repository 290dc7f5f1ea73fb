/**
 * Every default in one place, with units in the names. Environment variables (see env.ts and
 * the README's configuration table) override these.
 */
export const defaults = {
  port: 3000,
  host: '0.0.0.0',
  logLevel: 'info',
  nodeEnv: 'development',

  jwtAlg: 'HS256',
  /** Accepted clock skew for exp/nbf. */
  jwtClockToleranceS: 5,

  turnTtlS: 86_400,

  /** Largest accepted WebSocket frame; bigger frames close the socket with 1009. 64 KiB. */
  maxFrameBytes: 64 * 1024,
  /** Token bucket refill rate per connection; 0 disables rate limiting. */
  rateLimitPerSec: 100,
  /** Token bucket size: how many messages a connection may send at once. */
  rateLimitBurst: 200,
  /** Concurrent WebSocket connections per remote address; 0 disables the limit. */
  maxConnectionsPerIp: 100,
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
  /** Upper bound on receiving the upgrade request's headers (slowloris guard). */
  upgradeHeadersTimeoutMs: 10_000,
  /** Hard deadline for graceful shutdown before the process is forced to exit. */
  shutdownTimeoutMs: 10_000,
  /** Base of the reconnect hint sent in server:shutdown; each client gets base + random(0..base). */
  shutdownReconnectHintMs: 2_000,
  /** Read X-Forwarded-For for the client address (behind a trusted reverse proxy only). */
  trustProxy: false,
  /** Value of Access-Control-Allow-Origin for the HTTP API. */
  corsOrigin: '*',

  // mediasoup workers: one per core (os.availableParallelism()) unless MEDIASOUP_WORKERS says; 0 disables the SFU.
  /** Address mediasoup transports bind to. 127.0.0.1 suits one machine; use 0.0.0.0 + an announced address in deployments. */
  mediasoupListenIp: '127.0.0.1',
  rtcMinPort: 40_000,
  rtcMaxPort: 49_999,
  /**
   * Consumers one worker may carry before new ones go to another worker. Measured: one mediasoup
   * 3.19 worker delivers 100% up to ~1,000 SRTP audio consumers and collapses beyond (1,500 → 49%).
   */
  maxConsumersPerWorker: 800,
  /** PTT speaker lock TTL; the holder renews it every third of this while talking. */
  pttLockTtlMs: 5_000,
  /** Longest PTT talk burst unless the channel sets maxTalkMs. */
  pttMaxTalkMs: 60_000,
  /** A node that has not heartbeated into Redis for this long is dead; it heartbeats every third of it. */
  nodeTtlMs: 3_000,
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
