// Helpers shared by the migration examples (docs/migration.md). Plain Node ESM with `ws`.
import WebSocket from 'ws';

export const WS_URL = process.env.PARLEY_URL ?? 'ws://localhost:3000/ws';
export const HTTP_URL = WS_URL.replace(/^ws/, 'http').replace(/\/ws$/, '');

/**
 * A token for a user: PARLEY_TOKEN (PARLEY_TOKEN_2 for a second user), or a development token
 * from a server started with `npm start` and no JWT_SECRET.
 */
export async function token(n = 1, name = n === 1 ? 'Alice' : 'Bob') {
  const fromEnv = process.env[n === 1 ? 'PARLEY_TOKEN' : `PARLEY_TOKEN_${n}`];
  if (fromEnv) return fromEnv;
  const res = await fetch(`${HTTP_URL}/api/dev-token?name=${encodeURIComponent(name)}`);
  if (!res.ok) throw new Error(`set PARLEY_TOKEN (no dev tokens here: HTTP ${res.status})`);
  return (await res.json()).token;
}

/** Opens a WebSocket and collects its JSON messages; `next(match)` waits for one. */
export function open(url, protocols, options) {
  const ws = new WebSocket(url, protocols, options);
  const inbox = [];
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const i = waiters.findIndex((w) => w.match(msg));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    else inbox.push(msg);
  });
  const next = (match, timeoutMs = 5000) => {
    const m = typeof match === 'string' ? (msg) => msg.type === match : match;
    const i = inbox.findIndex(m);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${match}`)), timeoutMs);
      waiters.push({ match: m, resolve: (msg) => (clearTimeout(timer), resolve(msg)) });
    });
  };
  const send = (msg) => ws.send(JSON.stringify(msg));
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, next, send, opened };
}

export const show = (label, value) => console.log(`${label.padEnd(22)} ${JSON.stringify(value)}`);
