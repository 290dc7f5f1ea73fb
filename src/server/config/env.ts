import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { z } from 'zod';
import { defaults } from './defaults.js';

/** A configuration problem found at start-up. The message names the variable and what is wrong. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const csv = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/**
 * The environment variables Parley reads. Names are a public contract (operators and benchmarks
 * set them). Unknown variables are ignored: the environment holds much more than ours.
 */
const EnvSchema = z.object({
  NODE_ENV: z.string().default(defaults.nodeEnv),
  PORT: int(0, 65_535).default(defaults.port),
  HOST: z.string().min(1).default(defaults.host),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default(defaults.logLevel),

  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  JWT_PUBLIC_KEY: z.string().min(1).optional(),
  JWT_ALG: z.enum(['HS256', 'RS256', 'ES256']).optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  JWT_CLOCK_TOLERANCE_S: int(0, 300).default(defaults.jwtClockToleranceS),

  PARLEY_MANIFEST: z.string().min(1).optional(),

  TURN_SECRET: z.string().min(1).optional(),
  TURN_URIS: csv
    .pipe(z.array(z.string().regex(/^turns?:/, 'each URI must start with turn: or turns:')))
    .optional(),
  TURN_TTL: int(60, 7 * 86_400).default(defaults.turnTtlS),

  MAX_FRAME_BYTES: int(1_024, 16 * 1024 * 1024).default(defaults.maxFrameBytes),
  RATE_LIMIT_PER_SEC: int(0, 1_000_000).default(defaults.rateLimitPerSec),
  RATE_LIMIT_BURST: int(1, 1_000_000).default(defaults.rateLimitBurst),
  MAX_CONNECTIONS_PER_IP: int(0, 10_000_000).default(defaults.maxConnectionsPerIp),
  MAX_BUFFERED_BYTES: int(1_024, 1024 * 1024 * 1024).default(defaults.maxBufferedBytes),
  HEARTBEAT_INTERVAL_MS: int(100, 3_600_000).default(defaults.heartbeatIntervalMs),
  HEARTBEAT_TIMEOUT_MS: int(100, 3_600_000).default(defaults.heartbeatTimeoutMs),
  RESUME_GRACE_MS: int(0, 3_600_000).default(defaults.resumeGraceMs),
  AUTH_TIMEOUT_MS: int(100, 600_000).default(defaults.authTimeoutMs),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(defaults.shutdownTimeoutMs),
  TRUST_PROXY: bool.default(defaults.trustProxy),
  CORS_ORIGIN: z.string().min(1).default(defaults.corsOrigin),

  MEDIASOUP_WORKERS: int(0, 256).optional(),
  MEDIASOUP_LISTEN_IP: z.ipv4().or(z.ipv6()).default(defaults.mediasoupListenIp),
  MEDIASOUP_ANNOUNCED_ADDRESS: z.string().min(1).max(255).optional(),
  MEDIASOUP_LOG_LEVEL: z.enum(['debug', 'warn', 'error', 'none']).default('warn'),
  RTC_MIN_PORT: int(1_024, 65_535).default(defaults.rtcMinPort),
  RTC_MAX_PORT: int(1_024, 65_535).default(defaults.rtcMaxPort),
  MAX_CONSUMERS_PER_WORKER: int(1, 100_000).default(defaults.maxConsumersPerWorker),
  PTT_LOCK_TTL_MS: int(500, 600_000).default(defaults.pttLockTtlMs),
  PTT_MAX_TALK_MS: int(1_000, 3_600_000).default(defaults.pttMaxTalkMs),

  REDIS_URL: z
    .string()
    .regex(
      /^rediss?:\/\//,
      'must be a redis:// or rediss:// URL (comma-separated seeds with REDIS_CLUSTER=true)',
    )
    .optional(),
  REDIS_CLUSTER: bool.default(false),
  REDIS_PREFIX: z
    .string()
    .regex(/^[^{}]{1,64}$/, 'at most 64 characters, no braces')
    .default('parley:'),
  NODE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional(),
  NODE_TTL_MS: int(500, 60_000).default(defaults.nodeTtlMs),
});

/** Every variable Parley reads (the README's configuration table is checked against it). */
export const ENV_VARS = Object.keys(EnvSchema.shape) as (keyof typeof EnvSchema.shape)[];

export interface AuthConfig {
  alg: 'HS256' | 'RS256' | 'ES256';
  /** HS256 shared secret. */
  secret?: string;
  /** PEM public key (or a path to one, resolved at start-up) for RS256/ES256. */
  publicKey?: string;
  issuer?: string;
  audience?: string;
  clockToleranceS: number;
}

export interface LimitsConfig {
  maxFrameBytes: number;
  rateLimitPerSec: number;
  rateLimitBurst: number;
  maxConnectionsPerIp: number;
  maxBufferedBytes: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  authTimeoutMs: number;
  upgradeHeadersTimeoutMs: number;
  backpressureCloseTimeoutMs: number;
  closeTimeoutMs: number;
  floodCloseTimeoutMs: number;
}

export interface TurnConfig {
  secret?: string;
  uris: string[];
  ttlS: number;
}

export interface MediaConfig {
  /** 0 disables the SFU (signaling only). */
  workers: number;
  listenIp: string;
  announcedAddress?: string;
  logLevel: 'debug' | 'warn' | 'error' | 'none';
  rtcMinPort: number;
  rtcMaxPort: number;
  maxConsumersPerWorker: number;
}

export interface PttConfig {
  lockTtlMs: number;
  maxTalkMs: number;
}

export interface ClusterConfig {
  /** Unset: one node, in-memory state. */
  redisUrl?: string;
  redisCluster: boolean;
  redisPrefix: string;
  nodeId: string;
  nodeTtlMs: number;
}

export interface Config {
  production: boolean;
  port: number;
  host: string;
  logLevel: string;
  auth: AuthConfig;
  manifestPath?: string;
  turn: TurnConfig;
  limits: LimitsConfig;
  media: MediaConfig;
  ptt: PttConfig;
  cluster: ClusterConfig;
  resumeGraceMs: number;
  shutdownTimeoutMs: number;
  shutdownReconnectHintMs: number;
  trustProxy: boolean;
  corsOrigin: string;
}

/** Reads and validates the environment. Throws ConfigError naming the first bad variable(s). */
export function loadConfig(rawEnv: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable (`JWT_SECRET=` in a compose file) means unset, not "the empty string".
  const env = Object.fromEntries(Object.entries(rawEnv).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const raw = env[name];
      // Never echo secrets back, even in an error.
      const shown =
        raw === undefined || /SECRET|KEY|REDIS_URL/.test(name) ? '' : ` (got ${JSON.stringify(raw)})`;
      return `${name}: ${issue.message}${shown}`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';

  const alg = e.JWT_ALG ?? (e.JWT_PUBLIC_KEY ? 'RS256' : 'HS256');
  if (alg === 'HS256' && e.JWT_PUBLIC_KEY && !e.JWT_SECRET) {
    throw new ConfigError(
      'JWT_ALG: HS256 needs JWT_SECRET; set JWT_ALG=RS256 or ES256 to use JWT_PUBLIC_KEY',
    );
  }
  if (alg !== 'HS256' && !e.JWT_PUBLIC_KEY) {
    throw new ConfigError(`JWT_PUBLIC_KEY: required when JWT_ALG=${alg}`);
  }
  if (production && alg === 'HS256' && !e.JWT_SECRET) {
    throw new ConfigError(
      'JWT_SECRET: required when NODE_ENV=production (or set JWT_PUBLIC_KEY and JWT_ALG=RS256/ES256)',
    );
  }
  if (e.TURN_URIS?.length && !e.TURN_SECRET) {
    throw new ConfigError('TURN_SECRET: required when TURN_URIS is set');
  }
  if (e.RTC_MIN_PORT > e.RTC_MAX_PORT) {
    throw new ConfigError(`RTC_MIN_PORT: must not exceed RTC_MAX_PORT (${e.RTC_MAX_PORT})`);
  }
  if (e.HEARTBEAT_TIMEOUT_MS <= e.HEARTBEAT_INTERVAL_MS) {
    throw new ConfigError(
      `HEARTBEAT_TIMEOUT_MS: must be greater than HEARTBEAT_INTERVAL_MS (${e.HEARTBEAT_INTERVAL_MS})`,
    );
  }

  return {
    production,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    auth: {
      alg,
      ...(alg === 'HS256' && e.JWT_SECRET ? { secret: e.JWT_SECRET } : {}),
      ...(alg !== 'HS256' ? { publicKey: e.JWT_PUBLIC_KEY } : {}),
      ...(e.JWT_ISSUER ? { issuer: e.JWT_ISSUER } : {}),
      ...(e.JWT_AUDIENCE ? { audience: e.JWT_AUDIENCE } : {}),
      clockToleranceS: e.JWT_CLOCK_TOLERANCE_S,
    },
    ...(e.PARLEY_MANIFEST ? { manifestPath: e.PARLEY_MANIFEST } : {}),
    turn: {
      ...(e.TURN_SECRET ? { secret: e.TURN_SECRET } : {}),
      uris: e.TURN_URIS ?? [],
      ttlS: e.TURN_TTL,
    },
    limits: {
      maxFrameBytes: e.MAX_FRAME_BYTES,
      rateLimitPerSec: e.RATE_LIMIT_PER_SEC,
      rateLimitBurst: e.RATE_LIMIT_BURST,
      maxConnectionsPerIp: e.MAX_CONNECTIONS_PER_IP,
      maxBufferedBytes: e.MAX_BUFFERED_BYTES,
      heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
      heartbeatTimeoutMs: e.HEARTBEAT_TIMEOUT_MS,
      authTimeoutMs: e.AUTH_TIMEOUT_MS,
      upgradeHeadersTimeoutMs: defaults.upgradeHeadersTimeoutMs,
      backpressureCloseTimeoutMs: defaults.backpressureCloseTimeoutMs,
      closeTimeoutMs: defaults.closeTimeoutMs,
      floodCloseTimeoutMs: defaults.floodCloseTimeoutMs,
    },
    media: {
      workers: e.MEDIASOUP_WORKERS ?? availableParallelism(),
      listenIp: e.MEDIASOUP_LISTEN_IP,
      ...(e.MEDIASOUP_ANNOUNCED_ADDRESS ? { announcedAddress: e.MEDIASOUP_ANNOUNCED_ADDRESS } : {}),
      logLevel: e.MEDIASOUP_LOG_LEVEL,
      rtcMinPort: e.RTC_MIN_PORT,
      rtcMaxPort: e.RTC_MAX_PORT,
      maxConsumersPerWorker: e.MAX_CONSUMERS_PER_WORKER,
    },
    ptt: { lockTtlMs: e.PTT_LOCK_TTL_MS, maxTalkMs: e.PTT_MAX_TALK_MS },
    cluster: {
      ...(e.REDIS_URL ? { redisUrl: e.REDIS_URL } : {}),
      redisCluster: e.REDIS_CLUSTER,
      redisPrefix: e.REDIS_PREFIX,
      nodeId:
        e.NODE_ID ??
        `${hostname()
          .replace(/[^A-Za-z0-9_.-]/g, '-')
          .slice(0, 40)}-${randomBytes(4).toString('hex')}`,
      nodeTtlMs: e.NODE_TTL_MS,
    },
    resumeGraceMs: e.RESUME_GRACE_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    shutdownReconnectHintMs: defaults.shutdownReconnectHintMs,
    trustProxy: e.TRUST_PROXY,
    corsOrigin: e.CORS_ORIGIN,
  };
}
