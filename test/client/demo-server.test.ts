import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2eServer, webBuild, type E2eServer } from '../e2e/harness.js';
import { sdkClient } from './helpers.js';

interface ErrorBody {
  error: { code: string; message: string };
}

describe('the server serves the built demo at / (static files)', () => {
  let srv: E2eServer;
  let appJs: string;

  beforeAll(async () => {
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' } });
    appJs = readdirSync(join(await webBuild(), 'assets')).find((f) => /^main-[A-Z0-9]{8}\.js$/.test(f))!;
  });
  afterAll(async () => {
    await srv.close();
  });

  it('/ is the page: HTML with a strict CSP, revalidated by ETag', async () => {
    const res = await fetch(`${srv.httpUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toContain(`/assets/${appJs}`);
    const etag = res.headers.get('etag')!;
    const again = await fetch(`${srv.httpUrl}/`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const head = await fetch(`${srv.httpUrl}/index.html`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(html));
  });

  it('hashed assets are immutable; the SDK bundle is served as an ES module', async () => {
    const js = await fetch(`${srv.httpUrl}/assets/${appJs}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    await js.arrayBuffer();
    const sdk = await fetch(`${srv.httpUrl}/sdk/parley.js`);
    expect(sdk.status).toBe(200);
    expect(sdk.headers.get('cache-control')).toBe('no-cache');
    expect(await sdk.text()).toMatch(/export\s*{[^}]*ParleyClient/);
  });

  it('never serves anything outside the build, hidden files or directories', async () => {
    const paths = [
      '/../package.json',
      '/%2e%2e/package.json',
      '/assets/..%2f..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/..%5c..%5cpackage.json',
      '/.env',
      '/assets/',
      '/assets',
      '//etc/passwd',
      '/%00',
      '/%E0%A4%A',
      '/api/nothing-here',
    ];
    for (const path of paths) {
      // fetch() would normalise the dots away; send the raw path.
      const res = await rawGet(srv.port, path);
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body) as ErrorBody, path).toMatchObject({ error: { code: 'NOT_FOUND' } });
    }
  });

  it('without a build, / explains how to make one', async () => {
    const bare = await startE2eServer({
      env: { MEDIASOUP_WORKERS: '0' },
      webRoot: '/nonexistent/parley-web',
    });
    try {
      const res = await fetch(`${bare.httpUrl}/`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as ErrorBody).error.message).toContain('npm run build');
    } finally {
      await bare.close();
    }
  });
});

describe('GET /api/dev-token (development only)', () => {
  it('mints a short-lived token the server accepts, for a dev user id', async () => {
    const srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' }, devTokens: true });
    try {
      const res = await fetch(`${srv.httpUrl}/api/dev-token?name=${encodeURIComponent('Zoë Smith')}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as {
        token: string;
        userId: string;
        name: string;
        expiresAt: number;
        secret: string;
      };
      expect(body.userId).toMatch(/^dev-zoe-smith-[0-9a-f]{8}$/);
      expect(body.name).toBe('Zoë Smith');
      expect(body.expiresAt - Date.now()).toBeLessThanOrEqual(3_600_000);
      expect(body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const client = sdkClient(srv, body.token);
      try {
        const welcome = await client.connect();
        expect(welcome).toMatchObject({ userId: body.userId, name: 'Zoë Smith' });
      } finally {
        client.close();
      }
      // The same demo user again (a refresh), with the secret its first mint returned.
      const again = (await (
        await fetch(`${srv.httpUrl}/api/dev-token?name=Zoe&id=${body.userId}&secret=${body.secret}`)
      ).json()) as { userId: string; secret: string };
      expect(again.userId).toBe(body.userId);
      expect(again.secret).toBe(body.secret);
      for (const q of ['', 'name=', `name=${'x'.repeat(65)}`, 'name=Eve&id=alice', 'name=Eve&id=dev-../x']) {
        const bad = await fetch(`${srv.httpUrl}/api/dev-token?${q}`);
        expect(bad.status, q).toBe(400);
        expect(((await bad.json()) as ErrorBody).error.code).toBe('INVALID_MESSAGE');
      }
      expect(srv.logs.join('\n')).not.toContain(body.token);
    } finally {
      await srv.close();
    }
  });

  it('is 404 without the development issuer, and in production even with one', async () => {
    const plain = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' } });
    const prod = await startE2eServer({
      env: { MEDIASOUP_WORKERS: '0', NODE_ENV: 'production' },
      devTokens: true,
    });
    try {
      for (const s of [plain, prod]) {
        const res = await fetch(`${s.httpUrl}/api/dev-token?name=Mallory`);
        expect(res.status).toBe(404);
        expect(((await res.json()) as ErrorBody).error.code).toBe('NOT_FOUND');
      }
    } finally {
      await plain.close();
      await prod.close();
    }
  });
});

/** GET with the path exactly as written (no URL normalisation). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}
