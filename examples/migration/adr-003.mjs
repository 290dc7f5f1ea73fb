// An ADR-003 client against Parley: in-band auth, a room, the SFU handshake up to transports.
// (Producing and consuming go through mediasoup-client in a browser; see docs/sdk.md.)
//   node examples/migration/adr-003.mjs
import { WS_URL, open, show, token } from './lib.mjs';

let seq = 0;
const c = open(WS_URL); // no token on the upgrade: authenticate in-band
const request = async (type, payload) => {
  const correlationId = `r${++seq}`;
  c.send({ type, payload, correlationId, timestamp: Date.now() });
  const reply = await c.next((m) => m.correlationId === correlationId);
  if (reply.type === 'error') throw new Error(`${type}: ${reply.payload.code} ${reply.payload.message}`);
  return reply;
};
await c.opened;

// ADR-003 read auth:response.success; Parley answers auth:response {userId, name} or error UNAUTHORIZED.
const auth = await request('auth:request', { token: await token() });
show('auth:response', auth.payload);
show('welcome', Object.keys((await c.next('welcome')).payload));

// ADR-003 read room:state.roomConfig; Parley's field is `config`.
const state = await request('room:join', { roomId: 'lobby' });
show('room:state config', state.payload.config);

const caps = await request('media:capabilities', { roomId: 'lobby' });
show(
  'codecs',
  caps.payload.rtpCapabilities.codecs.map((k) => k.mimeType),
);
const send = await request('transport:create', { roomId: 'lobby', direction: 'send' });
show('send transport', Object.keys(send.payload));
// ADR-003 read producer:new.peerId; Parley's producer:new carries userId (and sessionId).
c.ws.close(1000);
