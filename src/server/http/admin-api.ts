import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import {
  ADMIN_API,
  ADMIN_OPENAPI_PATH,
  ERRORS,
  errorBody,
  type AdminEndpoint,
  type AdminOperation,
  type ErrorCode,
  type ErrorDetails,
  type HttpErrorBody,
} from '../../protocol/index.js';
import { adminOpenApi } from '../../protocol/admin-openapi.js';
import type { AdminHandlers } from '../admin/admin-service.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import { defaults } from '../config/defaults.js';
import { ParleyError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { TokenBucket } from '../signaling/rate-limiter.js';
import { clientAddress, type ProxyTrust } from './client-address.js';
import { sendJson } from './respond.js';

export interface AdminApiDeps {
  handlers: AdminHandlers;
  verifier: TokenVerifier;
  /** ADMIN_API_KEY: a Bearer credential besides admin JWTs; unset, only admin JWTs are accepted. */
  apiKey: string | undefined;
  /** Who the client is behind TRUST_PROXY (http/client-address.ts). */
  proxies: ProxyTrust;
  corsOrigin: string;
  metrics: Metrics;
  log: Logger;
}

interface Route {
  op: AdminOperation;
  ep: AdminEndpoint;
  pattern: RegExp;
  names: string[];
}

/**
 * The server API under /api/admin/: CORS, a per-address rate limit, Bearer authentication (the
 * ADMIN_API_KEY, or a JWT with `admin: true`), then the endpoint of ADMIN_API that the method and
 * path name, with its path parameters and JSON body validated by the endpoint's schemas. Errors
 * are the catalogue's `{error: {code, message, details}}`. The OpenAPI document is public.
 */
export function createAdminApi(deps: AdminApiDeps) {
  const routes: Route[] = (Object.entries(ADMIN_API) as [AdminOperation, AdminEndpoint][]).map(([op, ep]) => {
    const names: string[] = [];
    const source = ep.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    return { op, ep, pattern: new RegExp(`^${source}$`), names };
  });
  const openapi = JSON.stringify(adminOpenApi());
  const apiKeyDigest = deps.apiKey ? digest(deps.apiKey) : null;
  const buckets = new Map<string, TokenBucket>();
  const cors = {
    'access-control-allow-origin': deps.corsOrigin,
    'access-control-allow-headers': 'authorization, content-type',
    'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
    'access-control-max-age': '600',
  };

  const fail = (res: ServerResponse, code: ErrorCode, message?: string, details?: ErrorDetails) => {
    deps.metrics.errors(code).inc();
    const spec = ERRORS[code];
    const status = 'httpStatus' in spec ? spec.httpStatus : 500;
    sendJson(res, status, { error: errorBody(code, message, details) } satisfies HttpErrorBody, cors);
  };

  async function authorize(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) {
      res.setHeader('www-authenticate', 'Bearer');
      fail(res, 'UNAUTHORIZED', 'send Authorization: Bearer <ADMIN_API_KEY or admin JWT>');
      return null;
    }
    const credential = match[1];
    if (apiKeyDigest && timingSafeEqual(digest(credential), apiKeyDigest)) return 'api-key';
    const result = await deps.verifier.verify(credential);
    if (!result.ok) {
      deps.log.info({ reason: result.reason }, 'server API refused: bad credential');
      res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
      fail(res, 'UNAUTHORIZED');
      return null;
    }
    if (!result.identity.admin) {
      fail(res, 'FORBIDDEN', 'the server API needs a token with the admin claim');
      return null;
    }
    return `user:${result.identity.userId}`;
  }

  function admit(req: IncomingMessage): boolean {
    const address = clientAddress(req, deps.proxies);
    let bucket = buckets.get(address);
    if (!bucket) {
      if (buckets.size >= defaults.adminRateLimitMaxAddresses) buckets.clear();
      bucket = new TokenBucket(defaults.adminRateLimitPerSec, defaults.adminRateLimitBurst);
      buckets.set(address, bucket);
    }
    return bucket.take();
  }

  return async function admin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    if (url.pathname === ADMIN_OPENAPI_PATH) {
      if (method !== 'GET' && method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD, OPTIONS');
        return fail(res, 'METHOD_NOT_ALLOWED');
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...cors });
      res.end(openapi);
      return;
    }
    if (!admit(req)) return fail(res, 'RATE_LIMITED', 'too many server API requests; slow down');
    const who = await authorize(req, res);
    if (!who) return;

    const matching = routes.filter((r) => r.pattern.test(url.pathname));
    if (matching.length === 0)
      return fail(res, 'NOT_FOUND', 'no such server API endpoint; see /api/admin/openapi.json');
    const route = matching.find((r) => r.ep.method === method);
    if (!route) {
      res.setHeader('allow', [...matching.map((r) => r.ep.method), 'OPTIONS'].join(', '));
      return fail(res, 'METHOD_NOT_ALLOWED');
    }

    const raw = route.pattern.exec(url.pathname)?.slice(1) ?? [];
    const values = Object.fromEntries(route.names.map((n, i) => [n, safeDecode(raw[i] ?? '')]));
    const params = route.ep.params ? route.ep.params.safeParse(values) : { success: true as const, data: {} };
    if (!params.success) return invalid(res, params.error);

    let body: unknown = undefined;
    if (route.ep.body) {
      const read = await readJson(req);
      if (read === TOO_LARGE) {
        return fail(res, 'PAYLOAD_TOO_LARGE', `the body exceeds ${defaults.adminMaxBodyBytes} bytes`);
      }
      if (read === NOT_JSON) return fail(res, 'INVALID_MESSAGE', 'the body must be JSON', { path: '' });
      const parsed = route.ep.body.safeParse(read);
      if (!parsed.success) return invalid(res, parsed.error);
      body = parsed.data;
    }

    try {
      const handler = deps.handlers[route.op] as (input: {
        params: unknown;
        body: unknown;
      }) => Promise<unknown>;
      const result = await handler({ params: params.data, body });
      deps.log.info({ op: route.op, by: who, ...(params.data as object) }, 'server API call');
      sendJson(res, 200, result, cors);
    } catch (err) {
      if (err instanceof ParleyError) return fail(res, err.code, err.message, err.details);
      throw err;
    }
  };

  function invalid(res: ServerResponse, error: z.ZodError): void {
    const issue = error.issues[0];
    const path = issue?.path.join('.') ?? '';
    fail(res, 'INVALID_MESSAGE', issue ? `${path || 'body'}: ${issue.message}` : undefined, { path });
  }
}

const TOO_LARGE = Symbol('too large');
const NOT_JSON = Symbol('not json');

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even past the limit (leaving the loop would destroy the socket, and the 413 with it).
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= defaults.adminMaxBodyBytes) chunks.push(chunk);
  }
  if (size > defaults.adminMaxBodyBytes) return TOO_LARGE;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return NOT_JSON;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
