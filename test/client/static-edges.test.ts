import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.js';
import { startE2eServer, type E2eServer } from '../e2e/harness.js';

/*
 * Issue 13, low findings on the static server: symbolic links out of the web root, and source maps
 * in production. A real server serves a scratch web root laid out like a build.
 */

interface ErrorBody {
  error: { code: string };
}

const APP = 'main-ABCDEFGH.js';
const CSS = 'main-ABCDEFGH.css';
const JS_SOURCE = 'console.log("parley");\n';
const CSS_SOURCE = 'body{color:red}\n';

let dir: string;
let root: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'parley-static-'));
  root = join(dir, 'web');
  const outside = join(dir, 'outside');
  mkdirSync(join(root, 'assets'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>demo</title>');
  // esbuild's `linked` source maps: a comment at the end of each bundle, the map beside it.
  writeFileSync(join(root, 'assets', APP), `${JS_SOURCE}//# sourceMappingURL=${APP}.map\n`);
  writeFileSync(join(root, 'assets', `${APP}.map`), '{"version":3,"sources":["../../web/src/main.ts"]}');
  writeFileSync(join(root, 'assets', CSS), `${CSS_SOURCE}/*# sourceMappingURL=${CSS}.map */\n`);
  writeFileSync(join(root, 'assets', `${CSS}.map`), '{"version":3}');
  writeFileSync(join(outside, 'secret.txt'), 'not for the web');
  writeFileSync(join(dir, 'also-secret.json'), '{"secret":true}');
  // Links that leave the root (a file, a directory, a relative link, a chain), and one that stays.
  symlinkSync(join(outside, 'secret.txt'), join(root, 'leak.txt'));
  symlinkSync(outside, join(root, 'out'));
  symlinkSync('../../also-secret.json', join(root, 'assets', 'up.json'));
  symlinkSync(join(root, 'leak.txt'), join(root, 'chain.txt'));
  symlinkSync(join(root, 'index.html'), join(root, 'home.html'));
  symlinkSync(join(root, 'assets'), join(root, 'static'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('symbolic links in the web root', () => {
  let srv: E2eServer;
  beforeAll(async () => {
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' }, webRoot: root });
  });
  afterAll(() => srv.close());

  it('a link that leads out of the root is 404, as if it did not exist; links within it are served', async () => {
    for (const path of ['/leak.txt', '/out/secret.txt', '/assets/up.json', '/chain.txt']) {
      const res = await fetch(`${srv.httpUrl}${path}`);
      expect(res.status, path).toBe(404);
      const text = await res.text();
      expect((JSON.parse(text) as ErrorBody).error.code, path).toBe('NOT_FOUND');
      expect(text, path).not.toContain('secret');
    }
    // Inside the root, a link is just another name for a file of the demo.
    const home = await fetch(`${srv.httpUrl}/home.html`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('<title>demo</title>');
    const viaDir = await fetch(`${srv.httpUrl}/static/${APP}`);
    expect(viaDir.status).toBe(200);
    // The page itself is unaffected.
    expect((await fetch(`${srv.httpUrl}/`)).status).toBe(200);
  });

  it('development keeps source maps: served, and referenced from the bundles', async () => {
    const js = await fetch(`${srv.httpUrl}/assets/${APP}`);
    expect(await js.text()).toContain(`sourceMappingURL=${APP}.map`);
    expect((await fetch(`${srv.httpUrl}/assets/${APP}.map`)).status).toBe(200);
  });
});

describe('NODE_ENV=production: no source maps', () => {
  let srv: E2eServer;
  beforeAll(async () => {
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0', NODE_ENV: 'production' }, webRoot: root });
  });
  afterAll(() => srv.close());

  it('maps are 404 and the bundles go out without their sourceMappingURL, with a matching length', async () => {
    for (const map of [`/assets/${APP}.map`, `/assets/${CSS}.map`, `/static/${APP}.map`]) {
      const res = await fetch(`${srv.httpUrl}${map}`);
      expect(res.status, map).toBe(404);
      expect(((await res.json()) as ErrorBody).error.code).toBe('NOT_FOUND');
    }
    const js = await fetch(`${srv.httpUrl}/assets/${APP}`);
    expect(js.status).toBe(200);
    const body = await js.text();
    expect(body).toBe(JS_SOURCE);
    expect(Number(js.headers.get('content-length'))).toBe(Buffer.byteLength(body));
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const css = await fetch(`${srv.httpUrl}/assets/${CSS}`);
    expect(await css.text()).toBe(CSS_SOURCE);
    const head = await fetch(`${srv.httpUrl}/assets/${APP}`, { method: 'HEAD' });
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(JS_SOURCE));
    // Revalidation still works on the stripped body.
    const again = await fetch(`${srv.httpUrl}/assets/${APP}`, {
      headers: { 'if-none-match': js.headers.get('etag')! },
    });
    expect(again.status).toBe(304);
    // The rest of the site is unaffected.
    expect((await fetch(`${srv.httpUrl}/`)).status).toBe(200);
    expect((await fetch(`${srv.httpUrl}/health`)).status).toBe(200);
  });
});

describe('scripts/build-web.ts', () => {
  it('writes no source maps (and no sourceMappingURL) when they are off, as under NODE_ENV=production', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'parley-web-prod-'));
    try {
      const { files } = await buildWeb({ outdir, minify: true, sourceMaps: false });
      const names = Object.keys(files);
      expect(names.some((f) => f.endsWith('.js'))).toBe(true);
      expect(names.filter((f) => f.endsWith('.map'))).toEqual([]);
      for (const sub of ['assets', 'sdk']) {
        for (const f of readdirSync(join(outdir, sub))) {
          expect(f.endsWith('.map'), f).toBe(false);
          if (/\.(js|css)$/.test(f))
            expect(readFileSync(join(outdir, sub, f), 'utf8'), f).not.toContain('sourceMappingURL');
        }
      }
      expect(existsSync(join(outdir, 'index.html'))).toBe(true);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
