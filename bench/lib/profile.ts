import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotFunction {
  fn: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

function area(url: string): string {
  if (!url) return '(native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return 'node core';
  const src = /\/(src\/[^?]+)/.exec(url);
  if (src) return src[1].replace(/^src\/server\//, 'parley:').replace(/^src\/protocol\//, 'parley protocol:');
  return url.replace(/^file:\/\//, '');
}

/**
 * Self time per function and per package from a V8 .cpuprofile (written by --cpu-prof): the
 * evidence for "what stands in the way" in docs/benchmarks.md.
 */
export function analyzeProfile(
  path: string,
  top = 15,
): { totalMs: number; functions: HotFunction[]; byArea: { area: string; selfPct: number }[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++)
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const byFn = new Map<string, { fn: string; where: string; us: number }>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)') continue;
    total += us;
    const where = `${area(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    const key = `${name}@${where}`;
    const e = byFn.get(key) ?? { fn: name, where, us: 0 };
    e.us += us;
    byFn.set(key, e);
    const a = name === '(garbage collector)' ? '(garbage collector)' : area(n.callFrame.url);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const functions = [...byFn.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      fn: e.fn,
      where: e.where,
      selfMs: Math.round(e.us / 100) / 10,
      selfPct: Math.round((e.us / total) * 1000) / 10,
    }));
  return {
    totalMs: Math.round(total / 1000),
    functions,
    byArea: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([a, us]) => ({ area: a, selfPct: Math.round((us / total) * 1000) / 10 })),
  };
}

if (process.argv[1]?.endsWith('profile.ts') && process.argv[2]) {
  process.stdout.write(
    `${JSON.stringify(analyzeProfile(process.argv[2], Number(process.argv[3] ?? 25)), null, 2)}\n`,
  );
}
