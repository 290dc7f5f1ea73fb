/** What the recorder needs of one RTP packet (RFC 3550): where it sits in the stream, and its payload. */
export interface RtpPacket {
  readonly payloadType: number;
  readonly sequenceNumber: number;
  /** RTP timestamp: 48 kHz samples for Opus. */
  readonly timestamp: number;
  readonly ssrc: number;
  /** The codec payload: after the CSRC list and header extension, before any padding. */
  readonly payload: Buffer;
}

/**
 * Parses an RTP packet, skipping its CSRC list (CC), header extension (X, RFC 8285 one- or two-byte
 * or any other profile: its length word is all we need) and padding (P, the count in the last byte).
 * Returns null for anything that is not a well-formed RTP version 2 packet.
 */
export function parseRtp(packet: Buffer): RtpPacket | null {
  if (packet.length < 12) return null;
  const b0 = packet[0];
  if (b0 >> 6 !== 2) return null;
  const padding = (b0 & 0x20) !== 0;
  const extension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;
  let offset = 12 + csrcCount * 4;
  if (extension) {
    if (packet.length < offset + 4) return null;
    const words = packet.readUInt16BE(offset + 2);
    offset += 4 + words * 4;
  }
  let end = packet.length;
  if (padding) {
    const pad = packet[packet.length - 1];
    if (pad === 0) return null;
    end -= pad;
  }
  if (end < offset) return null;
  return {
    payloadType: packet[1] & 0x7f,
    sequenceNumber: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    ssrc: packet.readUInt32BE(8),
    payload: packet.subarray(offset, end),
  };
}
