/**
 * Clients of the SFU channel test, in their own processes (the speaker gets a process of its own,
 * so that a burst of listener signaling cannot delay its audio source): one real WebRTC speaker (libwebrtc via
 * @roamhq/wrtc, test/helpers/webrtc-peer.ts) holding the PTT floor with a continuous tone, and
 * listeners that join the channel the way mediasoup-client does: media:capabilities, a receive
 * transport, `consume` of the floor producer, `consumer:resume`.
 */
import type { WebSocket } from 'ws';
import { TestClient } from '../../test/helpers/client.js';
import { WebRtcPeer } from '../../test/helpers/webrtc-peer.js';
import { openClient } from '../lib/clients.js';
import { serve } from '../lib/ipc.js';
import { Rpc } from '../lib/rpc.js';
import { tokenFor, tokensFor } from '../lib/tokens.js';

let speaker: WebRtcPeer | null = null;
const sockets: WebSocket[] = [];

interface Member {
  rpc: Rpc;
  caps: Record<string, unknown>;
}
let prepared: Member[] = [];
let preparedRoom = '';

async function join(a: { url: string; roomId: string; prefix: string; count: number; concurrency: number }) {
  const ids = Array.from({ length: a.count }, (_, i) => `${a.prefix}${i}`);
  const tokens = await tokensFor(ids);
  const members: Member[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const worker = async () => {
    while (next < a.count) {
      const i = next++;
      try {
        const ws = await openClient({ protocol: 'parley', url: a.url, id: ids[i], token: tokens[i] });
        sockets.push(ws);
        const rpc = new Rpc(ws);
        await rpc.call('room:join', { roomId: a.roomId }, 'room:state', 30_000);
        const caps = (
          await rpc.call('media:capabilities', { roomId: a.roomId }, 'media:capabilities', 30_000)
        ).payload;
        members.push({ rpc, caps });
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: a.concurrency }, worker));
  return { members, errors, firstError };
}

/**
 * A receive transport and a consumer of the floor producer for each member. As docs/protocol.md
 * says: `consume` refused with CAPACITY_EXCEEDED (the transport's worker filled up meanwhile) →
 * create a new receive transport, which Parley places elsewhere, and retry.
 */
async function media(members: Member[], roomId: string, concurrency: number) {
  const out = {
    ok: 0,
    refusedTransport: 0,
    refusedConsume: 0,
    consumeRetries: 0,
    otherErrors: 0,
    firstOtherError: null as string | null,
  };
  const one = async ({ rpc, caps }: Member) => {
    for (let attempt = 0; ; attempt++) {
      const t = await rpc.request('transport:create', { roomId, direction: 'recv' }, 30_000);
      if (t.type !== 'transport:created') {
        if (t.payload.code === 'CAPACITY_EXCEEDED') out.refusedTransport++;
        else throw new Error(`transport:create → ${JSON.stringify(t.payload)}`);
        return;
      }
      const c = await rpc.request(
        'consume',
        {
          producerId: caps.floorProducerId,
          transportId: t.payload.id,
          rtpCapabilities: caps.rtpCapabilities,
        },
        30_000,
      );
      if (c.type !== 'consumed') {
        if (c.payload.code !== 'CAPACITY_EXCEEDED') throw new Error(`consume → ${JSON.stringify(c.payload)}`);
        if (attempt < 2) {
          out.consumeRetries++;
          continue;
        }
        out.refusedConsume++;
        return;
      }
      await rpc.call('consumer:resume', { consumerId: c.payload.consumerId }, 'consumer:resumed', 30_000);
      out.ok++;
      return;
    }
  };
  let next = 0;
  const worker = async () => {
    while (next < members.length) {
      const m = members[next++];
      try {
        await one(m);
      } catch (err) {
        out.otherErrors++;
        out.firstOtherError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

serve({
  async speaker(a: { url: string; roomId: string }) {
    const client = await TestClient.connect(a.url, await tokenFor('speaker'));
    const joined = await client.request('room:join', { roomId: a.roomId });
    if (joined.type !== 'room:state') throw new Error(`speaker join: ${JSON.stringify(joined)}`);
    speaker = await WebRtcPeer.open(client, a.roomId);
    await speaker.produceTone();
    const granted = await client.request('ptt:start', { roomId: a.roomId });
    if (granted.type !== 'ptt:granted') throw new Error(`ptt:start: ${JSON.stringify(granted)}`);
    return { producerId: speaker.producerId, floorProducerId: speaker.caps.floorProducerId };
  },

  /** Connects and joins `count` listeners (room:join + media:capabilities), then sets up their media. */
  async listeners(a: { url: string; roomId: string; prefix: string; count: number; concurrency: number }) {
    const joined = await join(a);
    const out = await media(joined.members, a.roomId, a.concurrency);
    return {
      ...out,
      otherErrors: out.otherErrors + joined.errors,
      firstOtherError: out.firstOtherError ?? joined.firstError,
    };
  },

  /** Only connects and joins (presence, room:state); `media` later asks for their transports. */
  async prepare(a: { url: string; roomId: string; prefix: string; count: number; concurrency: number }) {
    const joined = await join(a);
    prepared = joined.members;
    preparedRoom = a.roomId;
    return { joined: joined.members.length, errors: joined.errors, firstError: joined.firstError };
  },

  async media(a: { concurrency: number }) {
    return media(prepared, preparedRoom, a.concurrency);
  },

  async speakerStats() {
    return speaker ? { sent: await speaker.packetsSent(), states: speaker.states() } : null;
  },

  close() {
    speaker?.close();
    for (const s of sockets) s.terminate();
    return null;
  },
});
