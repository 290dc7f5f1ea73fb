import { randomInt } from 'node:crypto';
import type { ServerMessage, ServerMessageOf } from '../../src/protocol/index.js';
import type { TestClient } from './client.js';

/** A syntactically valid DTLS fingerprint: enough for transport.connect() (no handshake follows). */
export const FAKE_DTLS = {
  role: 'client' as const,
  fingerprints: [{ algorithm: 'sha-256', value: Array.from({ length: 32 }, () => 'AB').join(':') }],
};

export function opusRtpParameters(ssrc = randomInt(1, 2 ** 31)) {
  return {
    mid: '0',
    codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48_000, channels: 2, parameters: {} }],
    encodings: [{ ssrc }],
    headerExtensions: [],
    rtcp: { cname: 'test', reducedSize: true },
  };
}

/** A camera the SDK's way: VP8 in three simulcast encodings (q, h, f), told apart by SSRC here. */
export function vp8SimulcastRtpParameters(mid = '1') {
  const base = randomInt(1, 2 ** 30);
  return {
    mid,
    codecs: [
      { mimeType: 'video/VP8', payloadType: 101, clockRate: 90_000, parameters: {}, rtcpFeedback: [] },
    ],
    encodings: [
      { ssrc: base, maxBitrate: 150_000, scaleResolutionDownBy: 4 },
      { ssrc: base + 1, maxBitrate: 500_000, scaleResolutionDownBy: 2 },
      { ssrc: base + 2, maxBitrate: 1_200_000, scaleResolutionDownBy: 1 },
    ],
    headerExtensions: [],
    rtcp: { cname: 'cam', reducedSize: true },
  };
}

export function expectReply<T extends ServerMessage['type']>(
  msg: ServerMessage,
  type: T,
): ServerMessageOf<T> {
  if (msg.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(msg)}`);
  return msg as ServerMessageOf<T>;
}

/** Joins a room and sets up media the way mediasoup-client would, minus the DTLS handshake. */
export async function joinWithMedia(
  c: TestClient,
  roomId: string,
  opts: { produce?: boolean; consumeFloor?: boolean } = {},
) {
  expectReply(await c.request('room:join', { roomId }), 'room:state');
  const caps = expectReply(await c.request('media:capabilities', { roomId }), 'media:capabilities').payload;
  const send = expectReply(
    await c.request('transport:create', { roomId, direction: 'send' }),
    'transport:created',
  ).payload;
  const recv = expectReply(
    await c.request('transport:create', { roomId, direction: 'recv' }),
    'transport:created',
  ).payload;
  let producerId: string | undefined;
  if (opts.produce) {
    expectReply(
      await c.request('transport:connect', { transportId: send.id, dtlsParameters: FAKE_DTLS }),
      'transport:connected',
    );
    const produced = expectReply(
      await c.request('produce', { transportId: send.id, kind: 'audio', rtpParameters: opusRtpParameters() }),
      'produced',
    ).payload;
    producerId = produced.producerId;
  }
  let consumerId: string | undefined;
  if (opts.consumeFloor && caps.floorProducerId) {
    const consumed = expectReply(
      await c.request('consume', {
        producerId: caps.floorProducerId,
        transportId: recv.id,
        rtpCapabilities: caps.rtpCapabilities,
      }),
      'consumed',
    ).payload;
    consumerId = consumed.consumerId;
    expectReply(await c.request('consumer:resume', { consumerId }), 'consumer:resumed');
  }
  return { caps, send, recv, producerId, consumerId };
}

/** A station with one conference room (`conf`) and one PTT channel (`radio`), no ad-hoc rooms. */
export const CONF_AND_RADIO = {
  allowAdHocRooms: false,
  channels: [
    { id: 'conf', name: 'Conference', mode: 'conference', maxParticipants: 10 },
    { id: 'radio', name: 'Radio', mode: 'ptt', maxParticipants: 10 },
  ],
};
