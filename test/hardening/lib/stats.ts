import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Percentile (nearest rank) of a list of numbers; 0 for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function summarize(values: readonly number[]): {
  n: number;
  p50: number;
  p99: number;
  max: number;
} {
  return {
    n: values.length,
    p50: round(percentile(values, 50)),
    p99: round(percentile(values, 99)),
    max: round(values.length ? Math.max(...values) : 0),
  };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Prints one `[figures]` JSON line (what the reports and docs/reliability.md quote) and keeps a
 * copy in $TMPDIR/parley-figures/<name>.json.
 */
export function reportFigures(name: string, figures: Record<string, unknown>): void {
  const line = JSON.stringify({ figures: name, at: new Date().toISOString(), ...figures });
  console.log(`[figures] ${line}`);
  try {
    const dir = join(tmpdir(), 'parley-figures');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(JSON.parse(line), null, 2)}\n`);
  } catch {
    // Figures on stdout are what counts; the copy is a convenience.
  }
}

/**
 * Theil–Sen slope: the median of the slopes between every pair of points. Unlike least squares it
 * is not dragged by a few outliers, such as the dip of RSS after a major garbage collection.
 */
export function theilSen(points: readonly { x: number; y: number }[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const dx = points[j].x - points[i].x;
      if (dx !== 0) slopes.push((points[j].y - points[i].y) / dx);
    }
  }
  return slopes.length === 0 ? 0 : percentile(slopes, 50);
}

/** Least-squares slope over the per-window maxima (the upper envelope of a GC sawtooth). */
export function envelopeSlope(points: readonly { x: number; y: number }[], window: number): number {
  const maxima = new Map<number, { x: number; y: number }>();
  for (const p of points) {
    const k = Math.floor(p.x / window);
    const cur = maxima.get(k);
    if (!cur || p.y > cur.y) maxima.set(k, { x: (k + 0.5) * window, y: p.y });
  }
  return slope([...maxima.values()]);
}
