import { z } from 'zod';
import { RoomId } from './common.js';

// mediasoup's own types are validated in depth by mediasoup itself; these schemas bound the shape
// and size so that nothing absurd reaches it, and let unknown fields through to it.

export const MediaKind = z.enum(['audio', 'video']);
export const TransportDirection = z.enum(['send', 'recv']);
export const MediaId = z.string().min(1).max(64);
/** What a published track carries, as its publisher says (produce's `appData.source`). */
export const TrackSource = z.enum(['microphone', 'camera', 'screen']);
export type TrackSource = z.infer<typeof TrackSource>;

export const DtlsParameters = z.looseObject({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z
    .array(z.looseObject({ algorithm: z.string().max(32), value: z.string().max(256) }))
    .min(1)
    .max(8),
});

export const RtpParameters = z.looseObject({
  mid: z.string().max(32).optional(),
  codecs: z
    .array(
      z.looseObject({
        mimeType: z.string().max(64),
        payloadType: z.number().int().min(0).max(127),
        clockRate: z.number().int().positive(),
      }),
    )
    .min(1)
    .max(32),
  headerExtensions: z.array(z.looseObject({})).max(32).optional(),
  encodings: z.array(z.looseObject({})).max(8).optional(),
  rtcp: z.looseObject({}).optional(),
});

export const RtpCapabilities = z.looseObject({
  codecs: z
    .array(z.looseObject({ kind: MediaKind, mimeType: z.string().max(64) }))
    .max(64)
    .optional(),
  headerExtensions: z.array(z.looseObject({})).max(64).optional(),
});

export { RoomId };
