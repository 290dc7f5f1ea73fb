import { z } from 'zod';
import { isIP } from 'node:net';
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

/** One environment variable: its name, and the schema (with its default) that parses it into its setting. */
class EnvVar<S extends z.ZodType = z.ZodType> {
  constructor(
    readonly name: string,
    readonly schema: S,
  ) {}
}
/** A setting no environment variable overrides: always its value from defaults.ts. */
class Fixed<T = unknown> {
  constructor(readonly value: T) {}
}
interface SettingsTree {
  readonly [key: string]: EnvVar | Fixed | SettingsTree;
}
const env = <S extends z.ZodType>(name: string, schema: S) => new EnvVar(name, schema);
const fixed = <T extends number | string | boolean>(value: T) => new Fixed<Widen<T>>(value as Widen<T>);
type Widen<T> = T extends number ? number : T extends string ? string : T extends boolean ? boolean : T;

const JWT_ALGS = ['HS256', 'RS256', 'ES256'] as const;

/** Whether `entry` is an IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`). */
function isAddressOrRange(entry: string): boolean {
  const [ip, bits, extra] = entry.split('/');
  if (extra !== undefined || !ip) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * TRUST_PROXY: `false`/`no`/`0` (none), `true`/`yes` (one proxy), a hop count, or a comma-separated
 * list of trusted proxy addresses and CIDR ranges. Parsed into a hop count or the list.
 */
const trustProxy = z.string().transform((raw, ctx): number | string[] => {
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === 'yes') return 1;
  if (v === 'false' || v === 'no') return 0;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops <= 32) return hops;
  }
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = entries.find((e) => !isAddressOrRange(e));
  if (entries.length === 0 || bad !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be true/false, a hop count (0-32), or a comma-separated list of proxy addresses and CIDR ranges' +
        (bad !== undefined ? ` (not an address or range: ${JSON.stringify(bad.slice(0, 64))})` : ''),
    });
    return z.NEVER;
  }
  return entries;
});

/**
 * The configuration, shaped as the server reads it, with the environment variable behind each
 * setting. Variable names are a public contract (operators and benchmarks set them); the README's
 * configuration table is checked against them. Unknown variables are ignored: the environment holds
 * much more than ours. A new variable is one entry here plus its default in defaults.ts; the Config
 * type follows.
 */
const SETTINGS = {
  nodeEnv: env('NODE_ENV', z.string().default(defaults.nodeEnv)),
  port: env('PORT', int(0, 65_535).default(defaults.port)),
  host: env('HOST', z.string().min(1).default(defaults.host)),
  logLevel: env(
    'LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(defaults.logLevel),
  ),
  auth: {
    /** HS256 shared secret (kept only when the algorithm is HS256). */
    secret: env('JWT_SECRET', z.string().min(16, 'must be at least 16 characters').optional()),
    /** PEM public key (or a path to one, resolved at start-up) for RS256/ES256 (kept only for those). */
    publicKey: env('JWT_PUBLIC_KEY', z.string().min(1).optional()),
    /** Unset: RS256 with JWT_PUBLIC_KEY, else HS256; resolved by loadConfig. */
    alg: env('JWT_ALG', z.enum(JWT_ALGS).optional()),
    issuer: env('JWT_ISSUER', z.string().min(1).optional()),
    audience: env('JWT_AUDIENCE', z.string().min(1).optional()),
    clockToleranceS: env('JWT_CLOCK_TOLERANCE_S', int(0, 300).default(defaults.jwtClockToleranceS)),
    /** true: a token without `exp` is accepted (and never expires); default false: 401. */
    allowTokensWithoutExp: env('ALLOW_TOKENS_WITHOUT_EXP', bool.default(defaults.allowTokensWithoutExp)),
    /** false: an upgrade without a token gets 401 at once instead of waiting for auth:request. */
    inBandAuth: env('IN_BAND_AUTH', bool.default(defaults.inBandAuth)),
    /** true: a client offering only a JWT as its subprotocol is authenticated with it (the token is echoed). */
    legacyTokenSubprotocol: env('LEGACY_TOKEN_SUBPROTOCOL', bool.default(defaults.legacyTokenSubprotocol)),
    /** `auth:expiring` this long before a live connection's token expires. */
    expiringLeadMs: env('AUTH_EXPIRING_LEAD_MS', int(0, 3_600_000).default(defaults.authExpiringLeadMs)),
  },
  calls: {
    /** Whom a call:offer may ring: `shared-room` (default) or `any`. */
    policy: env('CALL_POLICY', z.enum(['any', 'shared-room']).default(defaults.callPolicy)),
    relayBudget: {
      bytesPerSec: env(
        'RELAY_BUDGET_BYTES_PER_SEC',
        int(1_024, 1024 * 1024 * 1024).default(defaults.relayBudgetBytesPerSec),
      ),
      burstBytes: env(
        'RELAY_BUDGET_BURST_BYTES',
        int(64 * 1024, 1024 * 1024 * 1024).default(defaults.relayBudgetBurstBytes),
      ),
      messagesPerSec: env(
        'RELAY_BUDGET_MESSAGES_PER_SEC',
        int(1, 10_000_000).default(defaults.relayBudgetMessagesPerSec),
      ),
      burstMessages: env(
        'RELAY_BUDGET_BURST_MESSAGES',
        int(1, 10_000_000).default(defaults.relayBudgetBurstMessages),
      ),
    },
  },
  manifestPath: env('PARLEY_MANIFEST', z.string().min(1).optional()),
  turn: {
    secret: env('TURN_SECRET', z.string().min(1).optional()),
    uris: env(
      'TURN_URIS',
      csv
        .pipe(z.array(z.string().regex(/^turns?:/, 'each URI must start with turn: or turns:')))
        .default(defaults.turnUris),
    ),
    ttlS: env('TURN_TTL', int(60, 7 * 86_400).default(defaults.turnTtlS)),
  },
  limits: {
    maxFrameBytes: env('MAX_FRAME_BYTES', int(1_024, 16 * 1024 * 1024).default(defaults.maxFrameBytes)),
    rateLimitPerSec: env('RATE_LIMIT_PER_SEC', int(0, 1_000_000).default(defaults.rateLimitPerSec)),
    rateLimitBurst: env('RATE_LIMIT_BURST', int(1, 1_000_000).default(defaults.rateLimitBurst)),
    maxConnectionsPerIp: env(
      'MAX_CONNECTIONS_PER_IP',
      int(0, 10_000_000).default(defaults.maxConnectionsPerIp),
    ),
    maxConnections: env('MAX_CONNECTIONS', int(0, 10_000_000).default(defaults.maxConnections)),
    maxBufferedBytes: env(
      'MAX_BUFFERED_BYTES',
      int(1_024, 1024 * 1024 * 1024).default(defaults.maxBufferedBytes),
    ),
    heartbeatIntervalMs: env(
      'HEARTBEAT_INTERVAL_MS',
      int(100, 3_600_000).default(defaults.heartbeatIntervalMs),
    ),
    heartbeatTimeoutMs: env('HEARTBEAT_TIMEOUT_MS', int(100, 3_600_000).default(defaults.heartbeatTimeoutMs)),
    authTimeoutMs: env('AUTH_TIMEOUT_MS', int(100, 600_000).default(defaults.authTimeoutMs)),
    upgradeHeadersTimeoutMs: env(
      'UPGRADE_HEADERS_TIMEOUT_MS',
      int(100, 600_000).default(defaults.upgradeHeadersTimeoutMs),
    ),
    backpressureCloseTimeoutMs: fixed(defaults.backpressureCloseTimeoutMs),
    closeTimeoutMs: fixed(defaults.closeTimeoutMs),
    floodCloseTimeoutMs: fixed(defaults.floodCloseTimeoutMs),
  },
  media: {
    /** 0 disables the SFU (signaling only). */
    workers: env('MEDIASOUP_WORKERS', int(0, 256).default(defaults.mediasoupWorkers)),
    listenIp: env('MEDIASOUP_LISTEN_IP', z.ipv4().or(z.ipv6()).default(defaults.mediasoupListenIp)),
    announcedAddress: env('MEDIASOUP_ANNOUNCED_ADDRESS', z.string().min(1).max(255).optional()),
    logLevel: env(
      'MEDIASOUP_LOG_LEVEL',
      z.enum(['debug', 'warn', 'error', 'none']).default(defaults.mediasoupLogLevel),
    ),
    rtcMinPort: env('RTC_MIN_PORT', int(1_024, 65_535).default(defaults.rtcMinPort)),
    rtcMaxPort: env('RTC_MAX_PORT', int(1_024, 65_535).default(defaults.rtcMaxPort)),
    maxConsumersPerWorker: env(
      'MAX_CONSUMERS_PER_WORKER',
      int(1, 100_000).default(defaults.maxConsumersPerWorker),
    ),
    maxVideoConsumersPerWorker: env(
      'MAX_VIDEO_CONSUMERS_PER_WORKER',
      int(1, 100_000).default(defaults.maxVideoConsumersPerWorker),
    ),
    maxVideoProducersPerRoom: env(
      'MAX_VIDEO_PRODUCERS_PER_ROOM',
      int(0, 10_000).default(defaults.maxVideoProducersPerRoom),
    ),
    maxIncomingBitrate: env(
      'TRANSPORT_MAX_INCOMING_BITRATE',
      int(0, 1_000_000_000).default(defaults.transportMaxIncomingBitrate),
    ),
    activeSpeakerHoldMs: env('ACTIVE_SPEAKER_HOLD_MS', int(0, 60_000).default(defaults.activeSpeakerHoldMs)),
  },
  /** Per-user and per-session quotas (defaults.ts says what each bounds). */
  quotas: {
    maxSessionsPerUser: env('MAX_SESSIONS_PER_USER', int(1, 100_000).default(defaults.maxSessionsPerUser)),
    maxRoomsPerSession: env('MAX_ROOMS_PER_SESSION', int(1, 100_000).default(defaults.maxRoomsPerSession)),
    maxAdHocRoomsPerUser: env(
      'MAX_AD_HOC_ROOMS_PER_USER',
      int(0, 100_000).default(defaults.maxAdHocRoomsPerUser),
    ),
    maxTransportsPerUser: env(
      'MAX_TRANSPORTS_PER_USER',
      int(1, 100_000).default(defaults.maxTransportsPerUser),
    ),
    maxProducersPerUser: env('MAX_PRODUCERS_PER_USER', int(1, 100_000).default(defaults.maxProducersPerUser)),
    maxConsumersPerUser: env(
      'MAX_CONSUMERS_PER_USER',
      int(1, 1_000_000).default(defaults.maxConsumersPerUser),
    ),
  },
  ptt: {
    lockTtlMs: env('PTT_LOCK_TTL_MS', int(500, 600_000).default(defaults.pttLockTtlMs)),
    maxTalkMs: env('PTT_MAX_TALK_MS', int(1_000, 3_600_000).default(defaults.pttMaxTalkMs)),
  },
  cluster: {
    /** Unset: one node, in-memory state. */
    redisUrl: env(
      'REDIS_URL',
      z
        .string()
        .regex(
          /^rediss?:\/\//,
          'must be a redis:// or rediss:// URL (comma-separated seeds with REDIS_CLUSTER=true)',
        )
        .optional(),
    ),
    redisCluster: env('REDIS_CLUSTER', bool.default(defaults.redisCluster)),
    redisPrefix: env(
      'REDIS_PREFIX',
      z
        .string()
        .regex(/^[^{}]{1,64}$/, 'at most 64 characters, no braces')
        .default(defaults.redisPrefix),
    ),
    nodeId: env(
      'NODE_ID',
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,64}$/)
        .default(defaults.nodeId),
    ),
    nodeTtlMs: env('NODE_TTL_MS', int(500, 60_000).default(defaults.nodeTtlMs)),
  },
  resumeGraceMs: env('RESUME_GRACE_MS', int(0, 3_600_000).default(defaults.resumeGraceMs)),
  shutdownTimeoutMs: env('SHUTDOWN_TIMEOUT_MS', int(100, 600_000).default(defaults.shutdownTimeoutMs)),
  shutdownReconnectHintMs: env(
    'SHUTDOWN_RECONNECT_HINT_MS',
    int(0, 600_000).default(defaults.shutdownReconnectHintMs),
  ),
  trustProxy: env('TRUST_PROXY', trustProxy.default(defaults.trustProxy)),
  admin: {
    /** A Bearer credential for the server API besides admin JWTs. Unset: admin JWTs only. */
    apiKey: env('ADMIN_API_KEY', z.string().min(16, 'must be at least 16 characters').optional()),
  },
  webhooks: {
    /** Receivers of every webhook event. Unset: no webhooks. */
    urls: env(
      'WEBHOOK_URLS',
      csv
        .pipe(z.array(z.url({ protocol: /^https?$/, error: 'each URL must be http:// or https://' })))
        .default([]),
    ),
    /** Signs every webhook body (HMAC-SHA256); required with WEBHOOK_URLS. */
    secret: env('WEBHOOK_SECRET', z.string().min(16, 'must be at least 16 characters').optional()),
  },
  recording: {
    /** Where PTT recordings are written; relative paths are resolved from the working directory. */
    dir: env('RECORDINGS_DIR', z.string().min(1).default(defaults.recordingsDir)),
    /** Default retention of a recording (a channel's `recordRetentionHours` overrides it). */
    retentionHours: env(
      'RECORDING_RETENTION_HOURS',
      z.coerce.number().positive().max(87_600).default(defaults.recordingRetentionHours),
    ),
    /** Cap on the total size of all recordings; the oldest are deleted first. */
    maxBytes: env(
      'RECORDINGS_MAX_BYTES',
      int(1, Number.MAX_SAFE_INTEGER).default(defaults.recordingsMaxBytes),
    ),
    sweepIntervalMs: env(
      'RECORDING_SWEEP_INTERVAL_MS',
      int(100, 86_400_000).default(defaults.recordingSweepIntervalMs),
    ),
  },
  corsOrigin: env('CORS_ORIGIN', z.string().min(1).default(defaults.corsOrigin)),
  metrics: {
    /** Also publish `parley_nodejs_gc_duration_seconds` (a GC observer; process-metrics.ts says what it costs). */
    gcDurations: env('METRICS_GC', bool.default(defaults.metricsGcDurations)),
  },
} satisfies SettingsTree;

/** The settings a tree describes: each variable's parsed value, each fixed setting's value. */
type SettingsOf<T> = {
  -readonly [K in keyof T]: T[K] extends EnvVar<infer S>
    ? z.output<S>
    : T[K] extends Fixed<infer V>
      ? V
      : SettingsOf<T[K]>;
};
type Settings = SettingsOf<typeof SETTINGS>;

function envVarsOf(tree: SettingsTree): EnvVar[] {
  return Object.values(tree).flatMap((node) =>
    node instanceof EnvVar ? [node] : node instanceof Fixed ? [] : envVarsOf(node),
  );
}

function settingsFrom(tree: SettingsTree, parsed: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(tree).map(([key, node]) => [
      key,
      node instanceof EnvVar
        ? parsed[node.name]
        : node instanceof Fixed
          ? node.value
          : settingsFrom(node, parsed),
    ]),
  );
}

/** Flat, by variable name, so that every validation error names the variable. */
const EnvSchema = z.object(Object.fromEntries(envVarsOf(SETTINGS).map((v) => [v.name, v.schema])));

/** Every variable Parley reads (the README's configuration table is checked against it). */
export const ENV_VARS: readonly string[] = envVarsOf(SETTINGS).map((v) => v.name);

export type JwtAlg = (typeof JWT_ALGS)[number];
export type AuthConfig = Omit<Settings['auth'], 'alg'> & { alg: JwtAlg };
export type LimitsConfig = Settings['limits'];
export type TurnConfig = Settings['turn'];
export type MediaConfig = Settings['media'];
export type QuotaConfig = Settings['quotas'];
export type PttConfig = Settings['ptt'];
export type ClusterConfig = Settings['cluster'];
export type WebhookConfig = Settings['webhooks'];
export type CallsConfig = Settings['calls'];
export type RecordingConfig = Settings['recording'];

export type Config = Omit<Settings, 'auth'> & {
  /** NODE_ENV=production. */
  production: boolean;
  auth: AuthConfig;
};

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
  const c = settingsFrom(SETTINGS, parsed.data) as Settings;
  const production = c.nodeEnv === 'production';

  const alg = c.auth.alg ?? (c.auth.publicKey ? 'RS256' : 'HS256');
  if (alg === 'HS256' && c.auth.publicKey && !c.auth.secret) {
    throw new ConfigError(
      'JWT_ALG: HS256 needs JWT_SECRET; set JWT_ALG=RS256 or ES256 to use JWT_PUBLIC_KEY',
    );
  }
  if (alg !== 'HS256' && !c.auth.publicKey) {
    throw new ConfigError(`JWT_PUBLIC_KEY: required when JWT_ALG=${alg}`);
  }
  if (production && alg === 'HS256' && !c.auth.secret) {
    throw new ConfigError(
      'JWT_SECRET: required when NODE_ENV=production (or set JWT_PUBLIC_KEY and JWT_ALG=RS256/ES256)',
    );
  }
  if (c.turn.uris.length && !c.turn.secret) {
    throw new ConfigError('TURN_SECRET: required when TURN_URIS is set');
  }
  if (c.webhooks.urls.length && !c.webhooks.secret) {
    throw new ConfigError('WEBHOOK_SECRET: required when WEBHOOK_URLS is set');
  }
  if (c.media.rtcMinPort > c.media.rtcMaxPort) {
    throw new ConfigError(`RTC_MIN_PORT: must not exceed RTC_MAX_PORT (${c.media.rtcMaxPort})`);
  }
  if (c.limits.heartbeatTimeoutMs <= c.limits.heartbeatIntervalMs) {
    throw new ConfigError(
      `HEARTBEAT_TIMEOUT_MS: must be greater than HEARTBEAT_INTERVAL_MS (${c.limits.heartbeatIntervalMs})`,
    );
  }

  return {
    ...c,
    production,
    // Only the key the algorithm uses is kept.
    auth: {
      ...c.auth,
      alg,
      secret: alg === 'HS256' ? c.auth.secret : undefined,
      publicKey: alg === 'HS256' ? undefined : c.auth.publicKey,
    },
  };
}
