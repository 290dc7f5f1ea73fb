import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StationInfo } from '../../protocol/http.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import type { Config } from '../config/env.js';
import { publicStation, type StationManifest } from '../config/manifest.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { turnCredentials, turnTtlFor } from '../turn/turn-credentials.js';
import { createDevTokenRoute } from './dev-token.js';
import { healthBody, type HealthSource } from './health.js';
import { sendError, sendJson } from './respond.js';
import { createStaticFiles, DEFAULT_WEB_ROOT } from './static.js';

export interface HttpDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  verifier: TokenVerifier;
  manifest: StationManifest;
  health: HealthSource;
  /** The built demo page served at `/` (default web/dist); null serves none. */
  webRoot?: string | null;
  /** Development only: signs demo tokens at /api/dev-token (404 when null or in production). */
  devTokenIssuer?: TokenIssuer | null;
  /** The server API under /api/admin/ (admin-api.ts); absent answers 404 there. */
  admin?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;
  /** The recordings API (recordings-api.ts); answers true when the path was one of its own. */
  recordings?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
}

/**
 * The HTTP API on the same port as /ws: health, metrics, the station manifest and TURN
 * credentials. Small enough that a framework would add more than it removes.
 */
export function createHttpHandler(deps: HttpDeps) {
  const startedAt = performance.now();
  const webRoot = deps.webRoot === undefined ? DEFAULT_WEB_ROOT : deps.webRoot;
  const serveStatic = webRoot ? createStaticFiles(webRoot, { sourceMaps: !deps.config.production }) : null;
  const devToken = createDevTokenRoute({
    issuer: deps.devTokenIssuer ?? null,
    config: deps.config,
    log: deps.log,
  });
  const station = JSON.stringify({
    ...publicStation(deps.manifest),
    turn: Boolean(deps.config.turn.secret),
  } satisfies StationInfo);
  const cors = {
    'access-control-allow-origin': deps.config.corsOrigin,
    'access-control-allow-headers': 'authorization, content-type, range',
    'access-control-expose-headers': 'content-range, content-length, accept-ranges',
    'access-control-allow-methods': 'GET, OPTIONS',
    'access-control-max-age': '600',
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // The server API has its own methods, CORS, authentication and rate limit.
    if (deps.admin && url.pathname.startsWith('/api/admin/')) return deps.admin(req, res, url);
    // A page on another origin imports the SDK (/sdk/parley.js), signs in with a development token
    // and reads the station: these answer with CORS on every status (200, 304, 404, 4xx), or the
    // browser hides why a request failed.
    if (crossOrigin(url.pathname)) for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD, OPTIONS');
      return sendError(res, 'METHOD_NOT_ALLOWED');
    }
    switch (url.pathname) {
      case '/health': {
        const body = healthBody(deps.health, startedAt);
        return sendJson(res, body.status === 'ok' || body.status === 'degraded' ? 200 : 503, body);
      }
      case '/metrics': {
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(text);
        return;
      }
      case '/api/station':
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...cors });
        res.end(station);
        return;
      case '/api/turn-credentials':
        return turn(req, res);
      case '/api/dev-token':
        return devToken(req, res, url);
      case '/ws':
        res.setHeader('upgrade', 'websocket');
        return sendError(res, 'UPGRADE_REQUIRED');
      default: {
        if (deps.recordings && url.pathname.startsWith('/api/')) {
          for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
          if (await deps.recordings(req, res, url)) return;
        }
        // The demo page and its assets; the API namespace never falls through to files.
        const served =
          serveStatic && !url.pathname.startsWith('/api/') ? await serveStatic(req, res, url.pathname) : null;
        if (served === 'served') return;
        if (served === 'not-built') {
          return sendError(res, 'NOT_FOUND', 'the demo page is not built: run `npm run build`');
        }
        return sendError(res, 'NOT_FOUND');
      }
    }
  }

  function crossOrigin(pathname: string): boolean {
    return (
      pathname.startsWith('/sdk/') ||
      pathname === '/api/dev-token' ||
      pathname === '/api/station' ||
      pathname === '/api/turn-credentials' ||
      pathname === '/ws'
    );
  }

  async function turn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) {
      res.setHeader('www-authenticate', 'Bearer');
      return sendError(res, 'UNAUTHORIZED');
    }
    const result = await deps.verifier.verify(match[1]);
    if (!result.ok) {
      deps.log.info({ reason: result.reason }, 'turn credentials refused: bad token');
      res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
      return sendError(res, 'UNAUTHORIZED');
    }
    const { secret, uris, ttlS } = deps.config.turn;
    if (!secret) return sendError(res, 'SERVICE_UNAVAILABLE', 'TURN is not configured on this server');
    const now = Date.now();
    const ttl = turnTtlFor(ttlS, result.identity.expiresAt, now);
    sendJson(res, 200, turnCredentials(secret, result.identity.userId, ttl, uris, now));
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => {
      deps.log.error({ err, path: req.url?.split('?')[0] }, 'http handler failed');
      if (!res.headersSent) sendError(res, 'INTERNAL');
      else res.destroy();
    });
  };
}
