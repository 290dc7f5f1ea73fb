// Flooders in a worker thread, so that the test's own event loop (which measures the calm clients'
// latency) is not the one doing the flooding. Plain JS: worker threads do not get the TS loader.
//
// workerData: { wsUrl, tokens: string[], durationMs, concurrency }
// Each flooder connects, sends `ping` frames as fast as its socket accepts them (it keeps at most
// 256 KiB queued on its side, like any real flooding tool), and reconnects with the next token once
// the server closes it. Posts one summary message at the end.
import { performance } from 'node:perf_hooks';
import { clearImmediate, setImmediate } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import { WebSocket } from 'ws';

const { wsUrl, tokens, durationMs, concurrency } = workerData;
const frame = JSON.stringify({ type: 'ping', payload: {} });
const until = Date.now() + durationMs;
const out = { opened: 0, rateLimited: 0, closedWith: {}, framesSent: 0, msToClose: [], refused: 0 };
let next = 0;

function one(token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
    let t0 = 0;
    let limited = false;
    let timer = null;
    const pump = () => {
      if (ws.readyState !== WebSocket.OPEN) return;
      let n = 0;
      while (ws.bufferedAmount < 256 * 1024 && n < 500) {
        ws.send(frame);
        n++;
      }
      out.framesSent += n;
      timer = setImmediate(pump);
    };
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === 'welcome') {
        out.opened++;
        t0 = performance.now();
        pump();
      } else if (m.type === 'error' && m.payload && m.payload.code === 'RATE_LIMITED') {
        limited = true;
      }
    });
    ws.on('unexpected-response', () => {
      out.refused++;
      resolve();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      if (timer) clearImmediate(timer);
      if (t0) {
        out.msToClose.push(performance.now() - t0);
        out.closedWith[code] = (out.closedWith[code] ?? 0) + 1;
        if (limited) out.rateLimited++;
      }
      resolve();
    });
  });
}

async function loop() {
  while (Date.now() < until && next < tokens.length) await one(tokens[next++]);
}

await Promise.all(Array.from({ length: concurrency }, loop));
parentPort.postMessage(out);
