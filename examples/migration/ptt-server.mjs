// A client of the earlier PTT server, unchanged but for its message names, against Parley.
// Server: LEGACY_TOKEN_SUBPROTOCOL=true (the token alone as subprotocol) and IN_BAND_AUTH=false.
//   node examples/migration/ptt-server.mjs
import { HTTP_URL, WS_URL, open, show, token } from './lib.mjs';

const jwt = await token();

// 1. Without a token the upgrade is refused with 401 (IN_BAND_AUTH=false).
const tokenless = open(WS_URL);
const refused = await tokenless.opened.then(
  () => 'opened (IN_BAND_AUTH is on)',
  (err) => err.message,
);
show('no token', refused);
tokenless.ws.terminate();

// 2. The token alone as the subprotocol, as the earlier client sent it; the server selects it.
const c = open(WS_URL, jwt);
await c.opened;
show('subprotocol selected', c.ws.protocol === jwt ? '<the token>' : c.ws.protocol);
show('welcome', (await c.next('welcome')).payload.userId);

// 3. The verification step: ping with `id`, pong with the same `id`.
c.send({ type: 'ping', id: '1' });
const pong = await c.next((m) => m.type === 'pong');
show('pong', { type: pong.type, id: pong.id });

// 4. JOIN_CHANNEL {channelId} is room:join {roomId}; PTT_START / PTT_STOP are ptt:start / ptt:stop.
c.send({ type: 'room:join', id: '2', payload: { roomId: 'dispatch' } });
show('room:state', (await c.next((m) => m.id === '2')).payload.config);
c.send({ type: 'ptt:start', id: '3', payload: { roomId: 'dispatch' } });
// The first frame after the request is its reply (the earlier server sent the broadcast first).
const first = await c.next(() => true);
show('ptt:start →', first.id === '3' ? first.type : `not the reply: ${first.type}`);
show('then', (await c.next('ptt:speaker-changed')).payload.speaker.name);
c.send({ type: 'ptt:stop', id: '4', payload: { roomId: 'dispatch' } });
show('ptt:stop →', (await c.next((m) => m.id === '4')).payload);
c.ws.close(1000);

// 5. Health: `uptime` in seconds, as before.
const health = await (await fetch(`${HTTP_URL}/health`)).json();
show('health', { status: health.status, uptime: typeof health.uptime });
