/** Opus packet facts (RFC 6716 §3.1) that an Ogg muxer needs: how many 48 kHz samples a packet holds. */

/** Samples per frame at 48 kHz for each of the 32 TOC configurations. */
const FRAME_SAMPLES: readonly number[] = [
  // SILK NB, MB, WB: 10, 20, 40, 60 ms
  480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880,
  // Hybrid SWB, FB: 10, 20 ms
  480, 960, 480, 960,
  // CELT NB, WB, SWB, FB: 2.5, 5, 10, 20 ms
  120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960,
];

/** Samples (48 kHz) per frame of a packet with this TOC byte. */
export function frameSamples(toc: number): number {
  return FRAME_SAMPLES[toc >> 3];
}

/**
 * Samples (48 kHz) a packet decodes to, or null when it is not a valid Opus packet (empty, a code 3
 * packet without its frame count, or more than 120 ms).
 */
export function packetSamples(packet: Uint8Array): number | null {
  if (packet.length < 1) return null;
  const toc = packet[0];
  let frames: number;
  switch (toc & 0x03) {
    case 0:
      frames = 1;
      break;
    case 1:
    case 2:
      frames = 2;
      break;
    default:
      if (packet.length < 2) return null;
      frames = packet[1] & 0x3f;
      if (frames === 0) return null;
  }
  const samples = frames * frameSamples(toc);
  return samples > 5_760 ? null : samples;
}

/**
 * A TOC-only packet (one frame of zero bytes) with the same configuration as `toc`: the decoder
 * treats it as a lost frame and conceals it (RFC 6716 §3.2.1), so it fills a gap (DTX, packet loss)
 * with the right number of samples at one byte per frame.
 */
export function gapPacket(toc: number): Buffer {
  return Buffer.from([toc & 0xfc]);
}
