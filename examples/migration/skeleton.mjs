// The signaling skeleton's checks against Parley: health, manifest, welcome, ping/pong.
//   node examples/migration/skeleton.mjs
import { HTTP_URL, WS_URL, open, show, token } from './lib.mjs';

const health = await (await fetch(`${HTTP_URL}/health`)).json();
show('health', { status: health.status, uptime: health.uptime });

// The station manifest; `signaling.url`, when the manifest sets it, says where to connect.
const station = await (await fetch(`${HTTP_URL}/api/station`)).json();
show('station', { name: station.name, signaling: station.signaling ?? null });
const url = process.env.PARLEY_URL ? WS_URL : (station.signaling?.url ?? WS_URL);

const c = open(url, ['parley', await token()]);
await c.opened;
const welcome = await c.next('welcome');
show('welcome', {
  protocolVersion: welcome.payload.protocolVersion,
  serverTime: typeof welcome.payload.serverTime,
});

c.send({ type: 'ping', correlationId: 'p1', timestamp: Date.now() });
const pong = await c.next((m) => m.correlationId === 'p1');
show('pong', {
  type: pong.type,
  timestamp: typeof pong.timestamp,
  serverTime: typeof pong.payload.serverTime,
});

c.ws.send('{not json');
show('invalid JSON →', (await c.next('error')).payload.code);
c.send({ type: 'no:such-type', correlationId: 'u1' });
show('unknown type →', (await c.next((m) => m.correlationId === 'u1')).payload.code);
c.ws.close(1000);
