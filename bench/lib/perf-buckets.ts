/**
 * Where a server's CPU went in a `perf record -g` profile (BENCH_PROFILE=perf in the connections
 * scenario), by top-level bucket, in µs per connection:
 *
 *   node --import tsx bench/lib/perf-buckets.ts [--by-owner] bench/results/profiles/<server>-conn/perf.data <connections>
 *
 * Each sample (its period: CPU ns of the `cpu-clock` event) goes to one bucket:
 * - threads other than the main one: V8's GC helpers, libuv's thread pool, other;
 * - on the main thread, GC when a collector frame is on the stack; the kernel when the leaf is in
 *   it (split by system call); otherwise the module of the nearest JavaScript frame (what called the
 *   builtin, runtime or C++ function the sample landed in): Parley's `src/`, pino and its helpers,
 *   zod, ws, PeerJS, Node's own JS (by module), the harness; with no JS frame at all, Node's and
 *   libuv's native event-loop code.
 * Stacks come from frame pointers; JS symbols from /tmp/perf-<pid>.map (`--perf-basic-prof`).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const GC =
  /Scavenge|MarkCompact|Heap::CollectGarbage|ConcurrentMarking|Sweeper|MinorMarkSweep|MarkingVisitor|Heap::PerformGarbageCollection|IncrementalMarking|Heap::FinalizeIncrementalMarking|Evacuat/;

interface Frame {
  sym: string;
  dso: string;
}

function jsModule(sym: string): string {
  // "JS:*name file:///…/x.ts:1:2" or "JS:^name node:events:425:26"
  const m = /\s(\S+?)(?::\d+:\d+)?$/.exec(sym);
  return m ? m[1] : sym;
}

/** The bucket of a JS frame's module, and a finer label. */
function jsBucket(mod: string): [string, string] {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(mod);
  if (nm) {
    const pkg = nm[1];
    if (
      /^(pino|sonic-boom|@pinojs\/.*|fast-redact|pino-std-serializers|thread-stream|quick-format-unescaped|fast-safe-stringify|on-exit-leak-free|atomic-sleep)$/.test(
        pkg,
      )
    )
      return ['pino JS', pkg];
    if (pkg === 'ws') return ['ws JS', mod.replace(/.*node_modules\//, '')];
    if (pkg === 'zod') return ['zod JS (claims schema)', pkg];
    if (pkg === 'peer') return ['PeerJS JS', pkg];
    if (pkg === 'prom-client') return ['prom-client JS', pkg];
    return ['other node_modules JS', pkg];
  }
  if (mod.startsWith('node:')) {
    return ['Node core JS (net, http, events, streams)', mod.replace(/^node:(internal\/)?/, '')];
  }
  const src = /\/(src\/.*)$/.exec(mod);
  if (src) return ['Parley JS (src/)', src[1]];
  const bench = /\/(bench\/.*)$/.exec(mod);
  if (bench) return ['harness / baseline JS (bench/)', bench[1]];
  return ['other JS', mod];
}

function syscallOf(stack: Frame[]): string {
  for (const f of stack) {
    const m = /^(?:__x64_sys_|__do_sys_|__sys_|do_sys_)(\w+)/.exec(f.sym);
    if (m) return m[1];
  }
  for (const f of stack)
    if (/^(asm_|irq|handle_softirqs|__irq|sysvec_)/.test(f.sym)) return '(interrupts, softirq)';
  for (const f of stack) if (/schedule|finish_task_switch/.test(f.sym)) return '(scheduling)';
  return '(other)';
}

/**
 * By owner (`--by-owner`): on the main thread outside GC and the kernel's leaf, the nearest JS
 * frame that is not Node's own (node:…) or ws's: the code on whose behalf Node and ws ran.
 */
function owner(stack: Frame[]): [string, string] | null {
  const app = stack.find(
    (f) => f.sym.startsWith('JS:') && !/\snode:/.test(f.sym) && !/node_modules\/ws\//.test(f.sym),
  );
  if (!app) return null;
  const [b, d] = jsBucket(jsModule(app.sym));
  return [`owner: ${b}`, `${d} ${app.sym.replace(/^JS:.(\S*).*$/, '$1')}`];
}

let byOwner = false;

function classify(tid: number, pid: number, stack: Frame[]): [string, string] {
  const leaf = stack[0] ?? { sym: '?', dso: '?' };
  if (tid !== pid) {
    if (stack.some((f) => GC.test(f.sym))) return ['GC (helper threads)', ''];
    if (stack.some((f) => /uv__fs_work|uv__work_|worker \(/.test(f.sym) || f.sym === 'worker'))
      return ['libuv thread pool (fs writes)', leaf.dso.includes('kernel') ? 'kernel' : 'user'];
    return ['other threads', leaf.sym];
  }
  if (stack.some((f) => GC.test(f.sym))) return ['GC (main thread)', ''];
  if (byOwner) {
    const o = owner(stack);
    if (o) return o;
    const js = stack.find((f) => f.sym.startsWith('JS:'));
    if (js) return ['owner: Node/ws alone (no application frame)', jsBucket(jsModule(js.sym))[1]];
  }
  if (leaf.dso.includes('kernel')) {
    return ['kernel (main thread)', syscallOf(stack)];
  }
  const js = stack.find((f) => f.sym.startsWith('JS:'));
  if (js) return jsBucket(jsModule(js.sym));
  if (/^uv_|^uv__/.test(leaf.sym)) return ['libuv (no JS on the stack)', leaf.sym];
  return [
    'Node/V8 native (no JS on the stack)',
    stack.find((f) => f.sym.startsWith('node::'))?.sym ?? leaf.sym,
  ];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--by-owner');
  byOwner = args.length !== process.argv.length - 2;
  const [file, connsArg] = args;
  if (!file) throw new Error('usage: perf-buckets.ts <perf.data> [connections]');
  const conns = Number(connsArg ?? 0);
  const perf = spawn('perf', ['script', '-i', file, '-F', 'pid,tid,period,ip,sym,dso'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const buckets = new Map<string, { ns: number; detail: Map<string, number> }>();
  let total = 0;
  let header: { pid: number; tid: number; period: number } | null = null;
  let stack: Frame[] = [];
  const flush = () => {
    if (!header) return;
    const [b, d] = classify(header.tid, header.pid, stack);
    const e = buckets.get(b) ?? { ns: 0, detail: new Map<string, number>() };
    e.ns += header.period;
    if (d) e.detail.set(d, (e.detail.get(d) ?? 0) + header.period);
    buckets.set(b, e);
    total += header.period;
    header = null;
    stack = [];
  };
  const rl = createInterface({ input: perf.stdout });
  for await (const line of rl) {
    const h = /^\s*(\d+)\/(\d+)\s+(\d+)\s*$/.exec(line);
    if (h) {
      flush();
      header = { pid: Number(h[1]), tid: Number(h[2]), period: Number(h[3]) };
      continue;
    }
    const f = /^\s+[0-9a-f]+\s+(.*)\s+\((.*)\)\s*$/.exec(line);
    if (f && header) stack.push({ sym: f[1], dso: f[2] });
  }
  flush();
  const us = (ns: number) => (conns > 0 ? `${(ns / 1000 / conns).toFixed(1)} µs` : '');
  const rows = [...buckets.entries()].sort((a, b) => b[1].ns - a[1].ns);
  process.stdout.write(
    `${file}: ${(total / 1e6).toFixed(0)} ms sampled${conns ? `, ${us(total)} per connection` : ''}\n`,
  );
  for (const [name, e] of rows) {
    process.stdout.write(
      `${((100 * e.ns) / total).toFixed(1).padStart(5)} %  ${us(e.ns).padStart(9)}  ${name}\n`,
    );
    const top = [...e.detail.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
    for (const [d, ns] of top) {
      if (ns / total < 0.003) break;
      process.stdout.write(
        `${''.padStart(8)}${((100 * ns) / total).toFixed(1).padStart(5)} %  ${us(ns).padStart(9)}  ${d}\n`,
      );
    }
  }
}

await main();
