import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.js';
import type * as ParleySdk from '../../src/client/index.js';
import { TokenIssuer } from '../../src/server/auth/token-issuer.js';
import { loadConfig, type Config } from '../../src/server/config/env.js';
import { StationManifest } from '../../src/server/config/manifest.js';
import { createServer, type ParleyServer } from '../../src/server/index.js';
import { createLogger } from '../../src/server/logger.js';
import { TEST_SECRET } from '../helpers/server.js';

declare global {
  interface Window {
    /** The SDK bundle (/sdk/parley.js), on pages opened with openSdkPage. */
    Parley: typeof ParleySdk;
  }
}

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Screenshots and other artifacts (gitignored). */
export const RESULTS_DIR = join(ROOT, 'test-results');

/** Debian's Chromium; CHROMIUM_BIN overrides. */
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
/** The flags every e2e browser runs with (see README "Development"): headless, fake mic, loopback ICE. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

let built: Promise<string> | null = null;

/** Builds the demo and the SDK bundle once per test process, into a scratch directory. */
export function webBuild(): Promise<string> {
  built ??= (async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'parley-web-'));
    await buildWeb({ outdir, minify: false });
    return outdir;
  })();
  return built;
}

export interface E2eServer {
  server: ParleyServer;
  config: Config;
  port: number;
  httpUrl: string;
  token(sub: string, name?: string, ttlS?: number): Promise<string>;
  /** The server's log lines (warn and above), for failure messages. */
  logs: string[];
  close(): Promise<void>;
}

/**
 * A real server on 127.0.0.1 serving the freshly built demo, with one mediasoup worker unless the
 * env says otherwise, and (optionally) the development token endpoint the demo signs in with.
 */
export async function startE2eServer(
  options: {
    env?: Record<string, string>;
    manifest?: unknown;
    devTokens?: boolean;
    /** Default: a fresh build of the demo. */
    webRoot?: string;
  } = {},
): Promise<E2eServer> {
  const webRoot = options.webRoot ?? (await webBuild());
  const config = loadConfig({
    JWT_SECRET: TEST_SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    MEDIASOUP_WORKERS: '1',
    ...options.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const issuer = new TokenIssuer({ secret: config.auth.secret ?? TEST_SECRET });
  const server = await createServer({
    config,
    manifest: StationManifest.parse(options.manifest ?? {}),
    log: createLogger('warn', sink),
    webRoot,
    devTokenIssuer: options.devTokens ? issuer : null,
  });
  const address: AddressInfo = await server.listen();
  return {
    server,
    config,
    port: address.port,
    httpUrl: `http://127.0.0.1:${address.port}`,
    token: (sub, name, ttlS) => issuer.issue({ sub, ...(name ? { name } : {}) }, ttlS ? { ttlS } : {}),
    logs,
    close: () => server.shutdown(),
  };
}

export interface BrowserPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and page errors, for failure messages. */
  errors: string[];
  close(): Promise<void>;
}

/** One Chromium with a fresh profile (its own user-data-dir) and one page. */
export async function openBrowser(viewport = { width: 1000, height: 720 }): Promise<BrowserPage> {
  const profile = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Failed fetches the SDK expects (e.g. 503 from /api/turn-credentials without TURN) are not errors.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      errors.push(`console: ${msg.text()}`);
    }
  });
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A page of our origin with the SDK bundle loaded as `window.Parley` (no demo UI). */
export async function openSdkPage(srv: E2eServer): Promise<BrowserPage> {
  const b = await openBrowser();
  // Any page of the server's origin: http://127.0.0.1 is a secure context, so getUserMedia works.
  await b.page.goto(`${srv.httpUrl}/health`);
  // A string, not a function: the test runner would rewrite a dynamic import() in a function body.
  await b.page.evaluate("import('/sdk/parley.js').then((m) => { window.Parley = m; })");
  return b;
}

export function screenshotPath(name: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  return join(RESULTS_DIR, name);
}

/**
 * A page of examples/ (e.g. `examples/start-here/index.html`), served as it is at `/` from a second
 * origin (another port on 127.0.0.1), the way a user would serve it beside their Parley server.
 */
export async function serveExample(file: string): Promise<{ origin: string; close(): Promise<void> }> {
  const html = await readFile(join(ROOT, file));
  const server: Server = createHttpServer((req, res) => {
    if (req.url?.split('?')[0] !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
