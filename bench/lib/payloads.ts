/**
 * The same signaling payloads for every server, in each server's own envelope: an ICE candidate
 * (~250 B on the wire) and an SDP offer (~3 KB on the wire). Frames are built once per flow and
 * sent as is, so the generator spends no time encoding.
 */

/**
 * `mandated`: the mandated-work baseline (baselines/mandated-relay.ts), named with `?id=` like the
 * raw relay and sent the very frames Parley gets (it validates them with Parley's codec).
 */
export type Protocol = 'raw' | 'peerjs' | 'parley' | 'mandated';
export type PayloadKind = 'ice' | 'sdp';

const CANDIDATE = {
  candidate:
    'candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 rport 46154 generation 0',
  sdpMid: '0',
  sdpMLineIndex: 0,
  usernameFragment: 'EEtu',
};

/** A plausible audio offer, cut to `bytes` characters of SDP text. */
function makeSdp(bytes: number): string {
  const lines = [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS 3b5c2b0e-6a64-4f38-9d1e-0b9b4f3c2a11',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:EEtu',
    'a=ice-pwd:asd88fgpdd777uzjYhagZg0Qzd2mQ9mV',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B',
    'a=setup:actpass',
    'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendrecv',
    'a=msid:3b5c2b0e-6a64-4f38-9d1e-0b9b4f3c2a11 1f0a4c55-2d7e-4c1b-8a33-5e6f7a8b9c0d',
    'a=rtcp-mux',
    'a=rtcp-rsize',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=rtpmap:63 red/48000/2',
    'a=fmtp:63 111/111',
    'a=rtpmap:9 G722/8000',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:13 CN/8000',
    'a=rtpmap:110 telephone-event/48000',
    'a=rtpmap:126 telephone-event/8000',
    'a=ssrc:1001218839 cname:Yq6w2kQ1u8f0Zb7T',
    'a=ssrc:1001218839 msid:3b5c2b0e-6a64-4f38-9d1e-0b9b4f3c2a11 1f0a4c55-2d7e-4c1b-8a33-5e6f7a8b9c0d',
  ];
  let sdp = lines.join('\r\n') + '\r\n';
  let i = 0;
  while (sdp.length < bytes) {
    sdp += `a=candidate:${1000 + i} 1 udp ${2122260223 - i} 192.0.2.${(i % 250) + 1} ${50000 + i} typ host generation 0 network-id ${i + 1}\r\n`;
    i++;
  }
  return sdp.slice(0, bytes - 2) + '\r\n';
}

const SDP = makeSdp(2_810);

/** A bench user's display name: what its token says (tokens.ts) and what `mandated` clients send. */
export function benchUserName(id: string): string {
  return `User ${id}`;
}

/** The frame a flow's sender sends to `to` (user ids / peer ids / raw ids alike); servers stamp the sender. */
export function frameFor(protocol: Protocol, kind: PayloadKind, to: string, flow: number): string {
  const callId = `call-${flow}`;
  if (protocol === 'peerjs') {
    return JSON.stringify(
      kind === 'ice'
        ? {
            type: 'CANDIDATE',
            dst: to,
            payload: { candidate: CANDIDATE, type: 'media', connectionId: `mc_${flow}` },
          }
        : {
            type: 'OFFER',
            dst: to,
            payload: { sdp: { type: 'offer', sdp: SDP }, type: 'media', connectionId: `mc_${flow}` },
          },
    );
  }
  // Parley, the raw relay and the mandated baseline take the very same frame (the baselines route on
  // payload.recipientId).
  return JSON.stringify(
    kind === 'ice'
      ? { type: 'call:ice-candidate', payload: { recipientId: to, callId, candidate: CANDIDATE } }
      : { type: 'call:offer', payload: { recipientId: to, callId, sdp: SDP } },
  );
}

/** The byte at offset 9 of a relayed frame (`{"type":"X…`): tells relayed traffic from errors cheaply. */
export function relayedMarker(protocol: Protocol, kind: PayloadKind): number {
  if (protocol === 'peerjs') return (kind === 'ice' ? 'C' : 'O').charCodeAt(0);
  return 'c'.charCodeAt(0);
}
