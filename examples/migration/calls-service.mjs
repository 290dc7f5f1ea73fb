// Two clients of the earlier calls service (hyphenated call-* messages) through the adapter:
// each offers the `parley.v0-calls` subprotocol beside its token.
//   node examples/migration/calls-service.mjs
import { WS_URL, open, show, token } from './lib.mjs';

const alice = open(WS_URL, ['parley.v0-calls', await token(1, 'Alice')]);
const bob = open(WS_URL, ['parley.v0-calls', await token(2, 'Bob')]);
await Promise.all([alice.opened, bob.opened]);
const aliceId = (await alice.next('welcome')).payload.userId;
const bobId = (await bob.next('welcome')).payload.userId;
show('subprotocol', alice.ws.protocol);

const callId = `call-${Date.now()}`;
alice.send({ type: 'call-offer', payload: { recipientId: bobId, callId, sdp: 'v=0\r\n' } });
const offer = await bob.next('call-offer');
show('bob got', { type: offer.type, from: offer.payload.senderId === aliceId });

bob.send({ type: 'call-answer', payload: { recipientId: aliceId, callId, sdp: 'v=0\r\n' } });
show('alice got', (await alice.next('call-answer')).type);

const candidate = { candidate: 'candidate:1 1 udp 1 192.0.2.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 };
alice.send({ type: 'call-ice-candidate', payload: { recipientId: bobId, callId, candidate } });
show('bob got', (await bob.next('call-ice-candidate')).type);

bob.send({ type: 'call-hangup', payload: { recipientId: aliceId, callId } });
show('alice got', (await alice.next('call-hangup')).type);

// Nobody there: call-error {error: "recipient_offline"}.
alice.send({ type: 'call-offer', payload: { recipientId: 'nobody-here', callId: 'c2', sdp: 'v=0\r\n' } });
const error = await alice.next('call-error');
show('call-error', { callId: error.payload.callId, error: error.payload.error });
alice.ws.close(1000);
bob.ws.close(1000);
