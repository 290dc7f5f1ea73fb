import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The demo page's build output (`npm run build`): `<package>/web/dist`, from src/ and dist/ alike. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../../web/dist', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** esbuild's `[name]-[hash]` file names: their content never changes, so they may be cached for good. */
const HASHED = /-[A-Z0-9]{8}\.[a-z0-9]+$/;

/**
 * The demo page's security headers: scripts and styles only from this origin, media from WebRTC
 * streams, signaling on this host's WebSocket.
 */
const HTML_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; " +
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'microphone=(self), camera=(self), display-capture=(self)',
};

export type StaticResult = 'served' | 'not-found' | 'not-built';

export interface StaticOptions {
  /**
   * Serve source maps (`*.map`) and leave the bundles' `sourceMappingURL` comments in. Off in
   * production (NODE_ENV=production): maps are 404 and the comments are cut from served scripts
   * and styles, whatever the build left in web/dist. Default true.
   */
  sourceMaps?: boolean;
}

/** A bundle's trailing source map reference (esbuild's `linked` mode), JS or CSS style. */
const SOURCE_MAP_COMMENT = /\n?(?:\/\/# sourceMappingURL=[^\n]*|\/\*# sourceMappingURL=[^*]*\*\/)\s*$/;

/**
 * Serves the built demo from one directory: `/` is `index.html`, other paths map to files inside
 * the root and nothing outside it (no `..`, no encoded separators, no dotfiles, no directories, no
 * symbolic links that lead out of it; links within it are followed).
 * Hashed assets are immutable for a year; everything else revalidates with an ETag.
 */
export function createStaticFiles(root: string, options: StaticOptions = {}) {
  const base = resolve(root);
  const sourceMaps = options.sourceMaps ?? true;

  return async function serveStatic(
    req: IncomingMessage,
    res: ServerResponse,
    pathname: string,
  ): Promise<StaticResult> {
    const mapped = mapPath(base, pathname);
    if (!mapped) return 'not-found';
    if (!sourceMaps && extname(mapped).toLowerCase() === '.map') return 'not-found';
    let info;
    let file: string;
    try {
      // Where the path really leads, links resolved: it must still be inside the (real) root.
      file = await realpath(mapped);
      const realBase = await realpath(base);
      if (!file.startsWith(realBase + sep)) return 'not-found';
      info = await stat(file);
    } catch {
      if (pathname === '/' || pathname === '/index.html') {
        try {
          await stat(base);
        } catch {
          return 'not-built';
        }
      }
      return 'not-found';
    }
    if (!info.isFile()) return 'not-found';

    const type = CONTENT_TYPES[extname(mapped).toLowerCase()] ?? 'application/octet-stream';
    // Production: scripts and styles go out without their source map reference (read whole: the
    // demo's bundles are a few hundred KiB).
    const body =
      !sourceMaps && /^text\/(javascript|css)/.test(type)
        ? Buffer.from((await readFile(file, 'utf8')).replace(SOURCE_MAP_COMMENT, '\n'))
        : null;
    const size = body ? body.length : info.size;
    const etag = `W/"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const headers: Record<string, string | number> = {
      'content-type': type,
      etag,
      'cache-control': HASHED.test(mapped) ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      ...(type.startsWith('text/html') ? HTML_HEADERS : {}),
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return 'served';
    }
    res.writeHead(200, { ...headers, 'content-length': size });
    if (req.method === 'HEAD') {
      res.end();
      return 'served';
    }
    if (body) {
      res.end(body);
      return 'served';
    }
    await new Promise<void>((done) => {
      const stream = createReadStream(file);
      stream.once('error', () => {
        res.destroy();
        done();
      });
      stream.once('end', done);
      stream.pipe(res);
    });
    return 'served';
  };
}

/** URL path → absolute file inside `base`, or null when the path is not a servable file name. */
export function mapPath(base: string, pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded === '/') decoded = '/index.html';
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.slice(1).split('/');
  // No traversal, no hidden files, no empty segments ("//" or a trailing slash: a directory).
  if (segments.some((s) => s === '' || s.startsWith('.'))) return null;
  const file = resolve(base, ...segments);
  return file.startsWith(base + sep) ? file : null;
}
