#!/usr/bin/env node
/**
 * Mints a Parley JWT for the configured secret (JWT_SECRET), or for the development secret that
 * `npm start` generates when JWT_SECRET is unset.
 *
 *   npm run token -- --sub alice --name Alice [--rooms a,b] [--ttl 3600] [--priority 5] [--admin]
 *   RS256/ES256: --key private.pem --alg RS256
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readDevSecret, devSecretPath } from '../server/auth/dev-secret.js';
import { TokenIssuer } from '../server/auth/token-issuer.js';

const usage = `usage: npm run token -- --sub <userId> [--name <display name>] [--rooms a,b] [--ttl <seconds>]
                     [--priority <0-100>] [--admin] [--no-publish] [--no-subscribe]
                     [--sources microphone,camera,screen]
                     [--key <private.pem> --alg RS256|ES256]
Signs with JWT_SECRET, or with the development secret (${devSecretPath()}) when it is unset.
JWT_ISSUER and JWT_AUDIENCE are added when set.`;

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n\n${usage}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: 'string' },
      name: { type: 'string' },
      rooms: { type: 'string' },
      ttl: { type: 'string', default: '3600' },
      priority: { type: 'string' },
      admin: { type: 'boolean', default: false },
      'no-publish': { type: 'boolean', default: false },
      'no-subscribe': { type: 'boolean', default: false },
      sources: { type: 'string' },
      key: { type: 'string' },
      alg: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(usage + '\n');
  process.exit(0);
}
if (!values.sub) fail('--sub is required');
const ttlS = Number(values.ttl);
if (!Number.isInteger(ttlS) || ttlS <= 0) fail('--ttl must be a positive integer (seconds)');
const priority = values.priority === undefined ? undefined : Number(values.priority);
if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 100)) {
  fail('--priority must be an integer 0-100');
}
const SOURCES = ['microphone', 'camera', 'screen'] as const;
type Source = (typeof SOURCES)[number];
const sources =
  values.sources === undefined
    ? undefined
    : values.sources
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
if (sources?.some((s) => !(SOURCES as readonly string[]).includes(s))) {
  fail(`--sources takes a comma-separated list of ${SOURCES.join(', ')}`);
}

let issuer: TokenIssuer;
if (values.key) {
  const alg = values.alg ?? 'RS256';
  if (alg !== 'RS256' && alg !== 'ES256') fail('--alg must be RS256 or ES256');
  issuer = new TokenIssuer({ privateKeyPem: readFileSync(values.key, 'utf8'), alg });
} else {
  const secret = process.env.JWT_SECRET ?? readDevSecret();
  if (!secret)
    fail(
      `JWT_SECRET is not set and there is no development secret at ${devSecretPath()} (run npm start once)`,
    );
  issuer = new TokenIssuer({ secret });
}

const token = await issuer.issue(
  {
    sub: values.sub,
    ...(values.name ? { name: values.name } : {}),
    ...(values.rooms
      ? {
          rooms: values.rooms
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean),
        }
      : {}),
    ...(priority !== undefined ? { pttPriority: priority } : {}),
    ...(values.admin ? { admin: true } : {}),
    ...(values['no-publish'] ? { canPublish: false } : {}),
    ...(values['no-subscribe'] ? { canSubscribe: false } : {}),
    ...(sources ? { canPublishSources: sources as Source[] } : {}),
  },
  {
    ttlS,
    ...(process.env.JWT_ISSUER ? { issuer: process.env.JWT_ISSUER } : {}),
    ...(process.env.JWT_AUDIENCE ? { audience: process.env.JWT_AUDIENCE } : {}),
  },
);
process.stdout.write(token + '\n');
