import type { types } from 'mediasoup';

/**
 * Router codecs: Opus for voice (every room), VP8 and H264 so conference rooms can carry video.
 * PTT rooms only ever carry Opus.
 */
export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48_000, channels: 2, parameters: { useinbandfec: 1 } },
  {
    kind: 'video',
    mimeType: 'video/VP8',
    clockRate: 90_000,
    parameters: { 'x-google-start-bitrate': 1_000 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90_000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
];

/** Payload type of the floor producer (the PTT relay); any value the router maps is fine. */
export const FLOOR_PAYLOAD_TYPE = 100;
