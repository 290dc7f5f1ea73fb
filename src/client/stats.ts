/** The audio side of an RTCStatsReport, summed over audio streams: what call and PTT UIs (and tests) show. */
export interface AudioStats {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  bytesReceived: number;
  packetsLost: number;
  /** Seconds (inbound-rtp). */
  jitter: number;
  /** 0..1, of the most recently received audio. */
  audioLevel: number;
  /** Seconds, of the selected candidate pair. */
  roundTripTime: number | null;
  selectedCandidatePair: SelectedCandidatePair | null;
}

export interface SelectedCandidatePair {
  /** host, srflx, prflx or relay. */
  localType: string;
  remoteType: string;
  protocol: string;
  /** For a relay candidate: how we reach the TURN server (udp, tcp, tls). */
  relayProtocol?: string;
  localAddress?: string;
  remoteAddress?: string;
}

type Stat = Record<string, unknown> & { id: string; type: string };

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Summarises a report from `RTCPeerConnection.getStats()` (or a mediasoup-client transport/consumer). */
export function audioStatsFrom(report: RTCStatsReport): AudioStats {
  const stats = new Map<string, Stat>();
  report.forEach((s: Stat) => stats.set(s.id, s));
  const out: AudioStats = {
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    packetsLost: 0,
    jitter: 0,
    audioLevel: 0,
    roundTripTime: null,
    selectedCandidatePair: null,
  };
  let pair: Stat | undefined;
  for (const s of stats.values()) {
    const kind = s.kind ?? s.mediaType;
    if (s.type === 'outbound-rtp' && kind === 'audio') {
      out.packetsSent += num(s.packetsSent);
      out.bytesSent += num(s.bytesSent);
    } else if (s.type === 'inbound-rtp' && kind === 'audio') {
      out.packetsReceived += num(s.packetsReceived);
      out.bytesReceived += num(s.bytesReceived);
      out.packetsLost += num(s.packetsLost);
      out.jitter = Math.max(out.jitter, num(s.jitter));
      out.audioLevel = Math.max(out.audioLevel, num(s.audioLevel));
    } else if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') {
      pair = stats.get(s.selectedCandidatePairId);
    }
  }
  // Browsers without transport stats: the nominated, succeeded pair.
  pair ??= [...stats.values()].find(
    (s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded',
  );
  if (pair) {
    const local = stats.get(str(pair.localCandidateId) ?? '');
    const remote = stats.get(str(pair.remoteCandidateId) ?? '');
    out.roundTripTime = typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime : null;
    if (local && remote) {
      const relayProtocol = str(local.relayProtocol);
      const localAddress = str(local.address) ?? str(local.ip);
      const remoteAddress = str(remote.address) ?? str(remote.ip);
      out.selectedCandidatePair = {
        localType: str(local.candidateType) ?? 'unknown',
        remoteType: str(remote.candidateType) ?? 'unknown',
        protocol: str(local.protocol) ?? 'unknown',
        ...(relayProtocol ? { relayProtocol } : {}),
        ...(localAddress ? { localAddress } : {}),
        ...(remoteAddress ? { remoteAddress } : {}),
      };
    }
  }
  return out;
}
