import { createRequire } from 'node:module';
import type { ServerPayload } from '../../src/protocol/index.js';
import type { TestClient } from './client.js';
import { expectReply } from './media.js';

/*
 * A real WebRTC endpoint (@roamhq/wrtc: libwebrtc in Node) speaking to the SFU over our own
 * protocol, doing by hand what mediasoup-client does in a browser: it turns `transport:created`
 * into the remote SDP of an ice-lite peer, answers/offers with a standard RTCPeerConnection and
 * reports its DTLS fingerprint with `transport:connect`.
 *
 * Only for tests that run in a loopback-only network namespace (see netns.ts): every peer
 * connection is created with `iceServers: []`, and mediasoup only announces 127.0.0.1.
 */

// ---- the slice of @roamhq/wrtc used here (its bundled types need the DOM lib, which we don't load) ----

interface SessionDescription {
  type: 'offer' | 'answer';
  sdp: string;
}
interface StatsReport {
  forEach(cb: (stat: Record<string, unknown>) => void): void;
}
interface WrtcTrack {
  readonly kind: string;
  stop(): void;
}
interface WrtcPeerConnection {
  readonly localDescription: SessionDescription | null;
  readonly connectionState: string;
  readonly iceConnectionState: string;
  addTransceiver(track: WrtcTrack | 'audio', init: { direction: 'sendonly' | 'recvonly' }): unknown;
  createOffer(): Promise<SessionDescription>;
  createAnswer(): Promise<SessionDescription>;
  setLocalDescription(d: SessionDescription): Promise<void>;
  setRemoteDescription(d: SessionDescription): Promise<void>;
  getStats(): Promise<StatsReport>;
  close(): void;
}
interface WrtcAudioSource {
  createTrack(): WrtcTrack;
  onData(data: {
    samples: Int16Array;
    sampleRate: number;
    bitsPerSample: number;
    channelCount: number;
    numberOfFrames: number;
  }): void;
}
interface Wrtc {
  RTCPeerConnection: new (config: { iceServers: never[] }) => WrtcPeerConnection;
  nonstandard: { RTCAudioSource: new () => WrtcAudioSource };
}

const wrtc = createRequire(import.meta.url)('@roamhq/wrtc') as Wrtc;

type Created = ServerPayload<'transport:created'>;
type Consumed = ServerPayload<'consumed'>;
interface IceCandidate {
  foundation: string;
  priority: number;
  address?: string;
  ip?: string;
  protocol: 'udp' | 'tcp';
  port: number;
  type: string;
  tcpType?: string;
}

/** Only opus, at the payload type the floor producer uses: what a plain listener can receive. */
export const OPUS_ONLY_CAPS = {
  codecs: [
    {
      kind: 'audio' as const,
      mimeType: 'audio/opus',
      clockRate: 48_000,
      channels: 2,
      preferredPayloadType: 100,
      rtcpFeedback: [],
    },
  ],
  headerExtensions: [],
};

function fingerprintOf(sdp: string): { algorithm: string; value: string } {
  const m = /a=fingerprint:(\S+) (\S+)/.exec(sdp);
  if (!m) throw new Error('no a=fingerprint in local SDP');
  return { algorithm: m[1].toLowerCase(), value: m[2] };
}

function match(sdp: string, re: RegExp, what: string): string {
  const m = re.exec(sdp);
  if (!m?.[1]) throw new Error(`no ${what} in SDP:\n${sdp}`);
  return m[1];
}

/**
 * The SDP of the mediasoup side of one transport (ice-lite, one audio m-section, bundle + rtcp-mux).
 * `codec` is the opus payload type and its fmtp; `ssrc`/`cname` describe what mediasoup sends.
 */
function mediasoupSdp(
  t: Created,
  o: {
    type: 'offer' | 'answer';
    mid: string;
    direction: 'sendonly' | 'recvonly';
    setup: 'actpass' | 'active' | 'passive';
    pt: number;
    fmtp?: string;
    ssrc?: number;
    cname?: string;
    /** Header extensions to accept, `a=extmap` lines as `[id, uri]`. */
    extmaps?: [number, string][];
  },
): string {
  const fp = t.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256');
  if (!fp) throw new Error('transport has no sha-256 fingerprint');
  const ice = t.iceParameters as { usernameFragment: string; password: string };
  const candidates = t.iceCandidates as unknown as IceCandidate[];
  const udp = candidates.find((c) => c.protocol === 'udp') ?? candidates[0];
  const lines = [
    'v=0',
    `o=mediasoup-server ${Date.now()} 1 IN IP4 0.0.0.0`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${o.mid}`,
    'a=msid-semantic: WMS *',
    `m=audio ${udp.port} UDP/TLS/RTP/SAVPF ${o.pt}`,
    `c=IN IP4 ${udp.address ?? udp.ip}`,
    `a=mid:${o.mid}`,
    `a=${o.direction}`,
    'a=rtcp-mux',
    'a=rtcp-rsize',
    `a=rtpmap:${o.pt} opus/48000/2`,
  ];
  if (o.fmtp) lines.push(`a=fmtp:${o.pt} ${o.fmtp}`);
  for (const [id, uri] of o.extmaps ?? []) lines.push(`a=extmap:${id} ${uri}`);
  lines.push(
    `a=ice-ufrag:${ice.usernameFragment}`,
    `a=ice-pwd:${ice.password}`,
    'a=ice-options:renomination',
    `a=fingerprint:sha-256 ${fp.value}`,
    `a=setup:${o.setup}`,
  );
  if (o.ssrc !== undefined) {
    lines.push(
      'a=msid:parley-floor floor-audio',
      `a=ssrc:${o.ssrc} cname:${o.cname ?? 'parley'}`,
      `a=ssrc:${o.ssrc} msid:parley-floor floor-audio`,
    );
  }
  for (const c of candidates) {
    const tcp = c.protocol === 'tcp' ? ` tcptype ${c.tcpType ?? 'passive'}` : '';
    lines.push(
      `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address ?? c.ip} ${c.port} typ ${c.type}${tcp}`,
    );
  }
  lines.push('a=end-of-candidates');
  return lines.join('\r\n') + '\r\n';
}

/** A 440 Hz tone at 48 kHz mono, fed in 10 ms frames on the wall clock (catching up after timer lag). */
class Tone {
  readonly track: WrtcTrack;
  readonly #source = new wrtc.nonstandard.RTCAudioSource();
  readonly #timer: NodeJS.Timeout;
  #phase = 0;
  #frames = 0;
  readonly #t0 = performance.now();

  constructor() {
    this.track = this.#source.createTrack();
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), 10);
  }

  #tick(): void {
    const due = Math.floor((performance.now() - this.#t0) / 10) + 1;
    // Never burst more than 100 ms worth after a long stall.
    if (due - this.#frames > 10) this.#frames = due - 10;
    while (this.#frames < due) {
      const samples = new Int16Array(480);
      for (let i = 0; i < samples.length; i++) {
        samples[i] = Math.round(8_000 * Math.sin(this.#phase));
        this.#phase += (2 * Math.PI * 440) / 48_000;
      }
      this.#phase %= 2 * Math.PI;
      this.#source.onData({
        samples,
        sampleRate: 48_000,
        bitsPerSample: 16,
        channelCount: 1,
        numberOfFrames: 480,
      });
      this.#frames++;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.track.stop();
  }
}

export interface InboundAudio {
  packetsReceived: number;
  packetsLost: number;
  jitter: number;
  /** Samples decoded and samples concealed (PLC/expansion) by the receiver's jitter buffer. */
  totalSamplesReceived: number;
  concealedSamples: number;
  /** Level (0..1) of the most recently decoded audio. */
  audioLevel: number;
}

/** One member of a room with real WebRTC media towards the SFU. */
export class WebRtcPeer {
  readonly client: TestClient;
  readonly roomId: string;
  readonly caps: ServerPayload<'media:capabilities'>;
  sendPc: WrtcPeerConnection | null = null;
  recvPc: WrtcPeerConnection | null = null;
  sendTransport: Created | null = null;
  recvTransport: Created | null = null;
  producerId: string | null = null;
  consumed: Consumed | null = null;
  #tone: Tone | null = null;

  private constructor(client: TestClient, roomId: string, caps: ServerPayload<'media:capabilities'>) {
    this.client = client;
    this.roomId = roomId;
    this.caps = caps;
  }

  /** `media:capabilities` for a room the client has joined. */
  static async open(client: TestClient, roomId: string): Promise<WebRtcPeer> {
    const caps = expectReply(
      await client.request('media:capabilities', { roomId }),
      'media:capabilities',
    ).payload;
    return new WebRtcPeer(client, roomId, caps);
  }

  async #createTransport(direction: 'send' | 'recv'): Promise<Created> {
    return expectReply(
      await this.client.request('transport:create', { roomId: this.roomId, direction }),
      'transport:created',
    ).payload;
  }

  async #connect(transportId: string, localSdp: string, role: 'client' | 'server'): Promise<void> {
    expectReply(
      await this.client.request('transport:connect', {
        transportId,
        dtlsParameters: { role, fingerprints: [fingerprintOf(localSdp)] },
      }),
      'transport:connected',
    );
  }

  /**
   * Send transport + a peer connection sending a continuous tone, and `produce` for it. The PC
   * offers; mediasoup answers as ice-lite DTLS server (a=setup:passive), so the PC is the DTLS
   * client. Opus keeps the payload type the PC offered: the producer's rtpParameters declare it
   * and mediasoup maps it to the router's.
   */
  async produceTone(
    opts: {
      /** Negotiate ssrc-audio-level (RFC 6464), which the SFU's active speaker detection reads. */
      audioLevel?: boolean;
      appData?: Record<string, unknown>;
    } = {},
  ): Promise<ServerPayload<'produced'>> {
    const t = await this.#createTransport('send');
    this.sendTransport = t;
    const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
    this.sendPc = pc;
    this.#tone = new Tone();
    pc.addTransceiver(this.#tone.track, { direction: 'sendonly' });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const sdp = offer.sdp;
    const mid = match(sdp, /a=mid:(\S+)/, 'a=mid');
    const pt = Number(match(sdp, /a=rtpmap:(\d+) opus\/48000\/2/i, 'opus rtpmap'));
    const fmtp = new RegExp(`a=fmtp:${pt} (\\S+)`).exec(sdp)?.[1];
    const ssrc = Number(match(sdp, /a=ssrc:(\d+) /, 'a=ssrc'));
    const cname = match(sdp, /a=ssrc:\d+ cname:(\S+)/, 'cname');
    const levelUri = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
    const levelId = opts.audioLevel
      ? Number(match(sdp, new RegExp(`a=extmap:(\\d+) ${levelUri}`), 'ssrc-audio-level extmap'))
      : null;
    await this.#connect(t.id, sdp, 'client');
    await pc.setRemoteDescription({
      type: 'answer',
      sdp: mediasoupSdp(t, {
        type: 'answer',
        mid,
        direction: 'recvonly',
        setup: 'passive',
        pt,
        ...(fmtp ? { fmtp } : {}),
        ...(levelId !== null ? { extmaps: [[levelId, levelUri]] as [number, string][] } : {}),
      }),
    });
    const produced = expectReply(
      await this.client.request('produce', {
        transportId: t.id,
        kind: 'audio',
        rtpParameters: {
          mid,
          codecs: [
            {
              mimeType: 'audio/opus',
              payloadType: pt,
              clockRate: 48_000,
              channels: 2,
              parameters: { minptime: 10, useinbandfec: 1 },
              rtcpFeedback: [],
            },
          ],
          headerExtensions:
            levelId !== null ? [{ uri: levelUri, id: levelId, encrypt: false, parameters: {} }] : [],
          encodings: [{ ssrc }],
          rtcp: { cname, reducedSize: true },
        },
        ...(opts.appData ? { appData: opts.appData } : {}),
      }),
      'produced',
    ).payload;
    this.producerId = produced.producerId;
    return produced;
  }

  /**
   * Recv transport, `consume` of the room's floor producer with opus-only capabilities, and a peer
   * connection answering mediasoup's offer (a=setup:actpass; the PC picks its DTLS role, reported
   * back with `transport:connect`). Then `consumer:resume`.
   */
  async consumeFloor(producerId = this.caps.floorProducerId): Promise<Consumed> {
    // Any producer of the room (a conference member's) may be given instead of the floor producer.
    if (!producerId) throw new Error(`room ${this.roomId} has no floor producer`);
    const t = await this.#createTransport('recv');
    this.recvTransport = t;
    const consumed = expectReply(
      await this.client.request('consume', {
        producerId,
        transportId: t.id,
        rtpCapabilities: OPUS_ONLY_CAPS,
      }),
      'consumed',
    ).payload;
    this.consumed = consumed;
    const rtp = consumed.rtpParameters as {
      mid?: string;
      codecs: { payloadType: number; parameters?: Record<string, unknown> }[];
      encodings?: { ssrc?: number }[];
      rtcp?: { cname?: string };
    };
    const codec = rtp.codecs[0];
    const ssrc = rtp.encodings?.[0]?.ssrc;
    if (ssrc === undefined) throw new Error('consumer has no ssrc');
    const fmtp = Object.entries(codec.parameters ?? {})
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(';');
    const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
    this.recvPc = pc;
    await pc.setRemoteDescription({
      type: 'offer',
      sdp: mediasoupSdp(t, {
        type: 'offer',
        mid: rtp.mid ?? '0',
        direction: 'sendonly',
        setup: 'actpass',
        pt: codec.payloadType,
        ...(fmtp ? { fmtp } : {}),
        ssrc,
        cname: rtp.rtcp?.cname ?? 'parley',
      }),
    });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    const setup = match(answer.sdp, /a=setup:(\S+)/, 'a=setup');
    await this.#connect(t.id, answer.sdp, setup === 'active' ? 'client' : 'server');
    expectReply(
      await this.client.request('consumer:resume', { consumerId: consumed.consumerId }),
      'consumer:resumed',
    );
    return consumed;
  }

  /** inbound-rtp (audio) of the receiving peer connection. */
  async inbound(): Promise<InboundAudio> {
    const out: InboundAudio = {
      packetsReceived: 0,
      packetsLost: 0,
      jitter: 0,
      totalSamplesReceived: 0,
      concealedSamples: 0,
      audioLevel: 0,
    };
    if (!this.recvPc) return out;
    const report = await this.recvPc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' || (s.kind ?? s.mediaType) !== 'audio') return;
      out.packetsReceived += Number(s.packetsReceived ?? 0);
      out.packetsLost += Number(s.packetsLost ?? 0);
      out.jitter = Math.max(out.jitter, Number(s.jitter ?? 0));
      out.totalSamplesReceived += Number(s.totalSamplesReceived ?? 0);
      out.concealedSamples += Number(s.concealedSamples ?? 0);
      out.audioLevel = Math.max(out.audioLevel, Number(s.audioLevel ?? 0));
    });
    return out;
  }

  async packetsReceived(): Promise<number> {
    return (await this.inbound()).packetsReceived;
  }

  /** outbound-rtp (audio) packetsSent of the sending peer connection. */
  async packetsSent(): Promise<number> {
    let n = 0;
    if (!this.sendPc) return n;
    const report = await this.sendPc.getStats();
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && (s.kind ?? s.mediaType) === 'audio') n += Number(s.packetsSent ?? 0);
    });
    return n;
  }

  /** ICE/connection states of both peer connections, for failure messages. */
  states(): string {
    const st = (pc: WrtcPeerConnection | null) =>
      pc ? `${pc.iceConnectionState}/${pc.connectionState}` : '-';
    return `send ${st(this.sendPc)}, recv ${st(this.recvPc)}`;
  }

  close(): void {
    this.#tone?.stop();
    this.#tone = null;
    this.sendPc?.close();
    this.recvPc?.close();
    this.sendPc = null;
    this.recvPc = null;
  }
}
