/**
 * `npm run bench [scenario...]`: Parley's benchmark suite (docs/benchmarks.md). Runs inside a
 * loopback-only network namespace (scripts/in-loopback-netns.sh); every server binds 127.0.0.1,
 * every load loop is bounded in count and time.
 *
 * stdout: one JSON object per scenario, one per line. stderr: a short human summary.
 * Also writes bench/results/latest.json (or BENCH_RESULTS, a file name in bench/results, so that
 * running one scenario need not replace the whole suite's results).
 *
 * Environment: BENCH_ROUNDS (default 3), BENCH_PROFILE=1 (V8 CPU profiles of the Parley servers
 * into bench/results/profiles), BENCH_VERBOSE=1 (generator stderr), BENCH_RESULTS,
 * BENCH_PARLEY_BASELINE (another checkout whose Parley the connections scenario also ramps and the
 * ptt scenario also presses: an A/B on the same machine load; that checkout needs its own
 * node_modules). BENCH_PTT_NAIVE_JOINED=1 (ptt: also a naive broadcaster whose members each made
 * one request at setup). BENCH_SERVERS=source: run the servers' TypeScript through tsx instead of
 * their `tsc` output (bench/lib/compiled.ts; Parley as `npm start` runs it is the default).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { format } from 'prettier';
import type { Ctx, Scenario, ScenarioResult, Stoppable } from './lib/ctx.js';
import { fdHardLimit } from './lib/proc.js';
import { ROOT, serveCompiled } from './lib/servers.js';
import { connectCostScenario } from './scenarios/connectcost.js';
import { connectionsScenario } from './scenarios/connections.js';
import { joinScenario } from './scenarios/join.js';
import { multinodeScenario } from './scenarios/multinode.js';
import { pttScenario } from './scenarios/ptt.js';
import { recordingScenario } from './scenarios/recording.js';
import { relayScenario } from './scenarios/relay.js';
import { relayCostScenario } from './scenarios/relaycost.js';
import { sfuScenario } from './scenarios/sfu.js';
import { videoScenario } from './scenarios/video.js';

const SCENARIOS: Record<string, Scenario> = {
  relay: relayScenario,
  relaycost: relayCostScenario,
  connections: connectionsScenario,
  connectcost: connectCostScenario,
  join: joinScenario,
  ptt: pttScenario,
  sfu: sfuScenario,
  video: videoScenario,
  multinode: multinodeScenario,
  recording: recordingScenario,
};

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const names = asked.length ? asked : Object.keys(SCENARIOS);
  for (const n of names) {
    if (!SCENARIOS[n]) {
      process.stderr.write(`unknown scenario "${n}"; known: ${Object.keys(SCENARIOS).join(', ')}\n`);
      process.exit(2);
    }
  }
  const servers = process.env.BENCH_SERVERS === 'source' ? 'source (tsx)' : 'compiled (tsc, node)';
  serveCompiled(process.env.BENCH_SERVERS !== 'source');
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const tracked: Stoppable[] = [];
  const ctx: Ctx = {
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    // BENCH_PROFILE=ramp (V8) or =perf (`perf record`) profiles only the connections scenario's
    // ramp (scenarios/connections.ts).
    cpuProfDir:
      process.env.BENCH_PROFILE &&
      process.env.BENCH_PROFILE !== 'ramp' &&
      process.env.BENCH_PROFILE !== 'perf'
        ? join(resultsDir, 'profiles')
        : undefined,
    say: (line) => process.stderr.write(`${line}\n`),
    track: (p) => {
      tracked.push(p);
      return p;
    },
  };
  const machine = {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    fdHardLimit: fdHardLimit(),
    servers,
  };
  ctx.say(
    `parley bench: ${names.join(', ')} on ${machine.cpus}× ${machine.cpuModel}, node ${machine.node}, ${ctx.rounds} rounds, servers ${servers}`,
  );
  const started = performance.now();
  const all: ScenarioResult[] = [];
  const cleanup = async () => {
    await Promise.all(
      tracked.splice(0).map((p) => ('stop' in p ? p.stop({ kill: true }) : p.close()).catch(() => undefined)),
    );
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  let failed = false;
  for (const name of names) {
    const t0 = performance.now();
    // Other work on the machine moves every number here: record the load around each scenario.
    const loadBefore = loadavg();
    ctx.say(`— ${name} (load average ${loadBefore})`);
    try {
      const results = await SCENARIOS[name](ctx);
      for (const r of results) {
        const withTime = {
          ...r,
          durationS: Math.round((performance.now() - t0) / 100) / 10,
          loadavg1m: { before: loadBefore, after: loadavg() },
        };
        all.push(withTime);
        process.stdout.write(`${JSON.stringify(withTime)}\n`);
      }
    } catch (err) {
      failed = true;
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      ctx.say(`${name} FAILED: ${error}`);
      const r = { scenario: name, error };
      all.push(r);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
    await cleanup();
  }
  const totalS = Math.round((performance.now() - started) / 1000);
  ctx.say(`total bench time ${totalS} s`);
  // Formatted like every other file of the repository (`npm test` runs prettier --check).
  const json = JSON.stringify({
    at: new Date().toISOString(),
    machine,
    rounds: ctx.rounds,
    totalS,
    results: all,
  });
  const resultsFile = basename(process.env.BENCH_RESULTS ?? 'latest.json');
  writeFileSync(join(resultsDir, resultsFile), await format(json, { parser: 'json' }));
  process.exit(failed ? 1 : 0);
}

function loadavg(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

void main();
