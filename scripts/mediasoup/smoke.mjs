// Smoke test for the installed mediasoup worker: start it, create a router with Opus and a
// WebRtcTransport (UDP + TCP) on 127.0.0.1, print what came back, close everything.
// Exits non-zero on any failure (or after 15 s). Needs only loopback, e.g.:
//   unshare -n sh -c 'ip link set lo up && exec "$@"' sh node scripts/mediasoup/smoke.mjs
// Does not exercise DTLS/SRTP (that needs a real WebRTC peer); see README.md.
import * as mediasoup from 'mediasoup';

const guard = setTimeout(() => {
  console.error('smoke: timed out after 15 s');
  process.exit(1);
}, 15_000);

const t0 = performance.now();
const ms = () => `${(performance.now() - t0).toFixed(1)} ms`;

const worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 40000, rtcMaxPort: 49999 });
worker.on('died', (err) => {
  console.error('smoke: worker died', err);
  process.exit(1);
});
console.log(
  `mediasoup ${mediasoup.version}, node ${process.version}, worker pid ${worker.pid} started (${ms()})`,
);
console.log(`worker binary: ${process.env.MEDIASOUP_WORKER_BIN || mediasoup.workerBin}`);

const router = await worker.createRouter({
  mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }],
});
const codecs = router.rtpCapabilities.codecs.map((c) => `${c.mimeType}/${c.clockRate}`).join(', ');
console.log(`router ${router.id}: codecs ${codecs} (${ms()})`);

const transport = await router.createWebRtcTransport({
  listenInfos: [
    { protocol: 'udp', ip: '127.0.0.1' },
    { protocol: 'tcp', ip: '127.0.0.1' },
  ],
});
const candidates = transport.iceCandidates.map((c) => `${c.protocol}:${c.address}:${c.port}`).join(' ');
const fingerprints = transport.dtlsParameters.fingerprints.map((f) => f.algorithm).join(',');
console.log(`WebRtcTransport ${transport.id}: ${candidates}; DTLS fingerprints ${fingerprints} (${ms()})`);

const usage = await worker.getResourceUsage();
console.log(`worker maxrss ${usage.ru_maxrss} KiB`);

transport.close();
router.close();
worker.close();
clearTimeout(guard);
console.log(`smoke: OK (${ms()})`);
