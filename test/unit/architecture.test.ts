/**
 * The import rules of docs/architecture.md, checked on the source itself: layers that hold are
 * layers a test enforces. (`npx madge --circular --extensions ts src` finds the same cycles.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

interface Import {
  target: string;
  names: string[];
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const SOURCES = files(SRC);
const TEXT = new Map(SOURCES.map((f) => [f, readFileSync(f, 'utf8')]));

/** Relative imports of a file (`import … from './x.js'`, `export … from`, `import('./x.js')`). */
function importsOf(file: string): Import[] {
  const out: Import[] = [];
  const re =
    /(?:import|export)\s+(?:type\s+)?(?:\{([^}]*)\}|[\w*\s,]+?)?\s*from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g;
  for (const m of (TEXT.get(file) ?? '').matchAll(re)) {
    const spec = m[2] ?? m[3];
    const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    const names = (m[1] ?? '')
      .split(',')
      .map(
        (n) =>
          n
            .trim()
            .replace(/^type\s+/, '')
            .split(/\s+as\s+/)[0],
      )
      .filter(Boolean);
    out.push({ target, names });
  }
  return out;
}

const GRAPH = new Map(SOURCES.map((f) => [f, importsOf(f)]));
const rel = (f: string) => relative(ROOT, f);

describe('architecture: the import rules hold', () => {
  it('sees every relative import (a rule over a graph the scanner misread could not fail)', () => {
    // Every `from '.…'` and `import('.…')` in the source is an edge of the graph, so an import form
    // the scanner does not understand (a default plus named import, a multi-line list) fails here.
    const missed: string[] = [];
    for (const f of SOURCES) {
      const text = TEXT.get(f) ?? '';
      const written = (text.match(/\bfrom\s+'\.[^']*'|\bimport\('\.[^']*'\)/g) ?? []).length;
      if (written !== GRAPH.get(f)?.length)
        missed.push(`${rel(f)}: ${written} written, ${GRAPH.get(f)?.length} seen`);
    }
    expect(missed).toEqual([]);
    // And the graph holds edges the rules below are about: the dispatcher's own import of the
    // connection module, and a domain folder importing another's port.
    const edge = (from: string, to: string) =>
      GRAPH.get(join(SRC, from))?.some((i) => i.target === join(SRC, to)) ?? false;
    expect(edge('server/signaling/dispatcher.ts', 'server/signaling/connection.ts')).toBe(true);
    expect(edge('server/ptt/floor-control.ts', 'server/rooms/room-fanout.ts')).toBe(true);
  });

  it('has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const { target } of GRAPH.get(f) ?? []) {
        if (!GRAPH.has(target)) continue;
        if (state.get(target) === 'open')
          cycles.push(stack.slice(stack.indexOf(target)).map(rel).join(' → '));
        else if (!state.has(target)) visit(target);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of SOURCES) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('only the signaling layer imports the WebSocket connection module', () => {
    const connection = join(SRC, 'server/signaling/connection.ts');
    const offenders = SOURCES.filter(
      (f) =>
        !f.startsWith(join(SRC, 'server/signaling/')) && GRAPH.get(f)?.some((i) => i.target === connection),
    );
    expect(offenders.map(rel)).toEqual([]);
  });

  it('the SDK never imports the server', () => {
    const offenders = SOURCES.filter(
      (f) =>
        f.startsWith(join(SRC, 'client/')) &&
        GRAPH.get(f)?.some((i) => i.target.startsWith(join(SRC, 'server/'))),
    );
    expect(offenders.map(rel)).toEqual([]);
  });

  it('the server SDK imports the protocol, never the server', () => {
    const offenders = SOURCES.filter(
      (f) =>
        f.startsWith(join(SRC, 'server-sdk/')) &&
        GRAPH.get(f)?.some(
          (i) =>
            !i.target.startsWith(join(SRC, 'protocol/')) && !i.target.startsWith(join(SRC, 'server-sdk/')),
        ),
    );
    expect(offenders.map(rel)).toEqual([]);
  });

  it('the protocol depends on nothing but itself', () => {
    const offenders = SOURCES.filter(
      (f) =>
        f.startsWith(join(SRC, 'protocol/')) &&
        GRAPH.get(f)?.some((i) => !i.target.startsWith(join(SRC, 'protocol/'))),
    );
    expect(offenders.map(rel)).toEqual([]);
  });

  it('domain folders reach each other through interfaces, never concrete classes', () => {
    const DOMAIN = ['media', 'cluster', 'state', 'sessions', 'rooms', 'calls', 'ptt', 'recording'];
    const folderOf = (f: string) => {
      const parts = relative(join(SRC, 'server'), f).split('/');
      return parts.length > 1 && DOMAIN.includes(parts[0]) ? parts[0] : null;
    };
    const classesOf = (f: string) =>
      new Set([...(TEXT.get(f) ?? '').matchAll(/export (?:abstract )?class (\w+)/g)].map((m) => m[1]));
    const offenders: string[] = [];
    for (const f of SOURCES) {
      const from = folderOf(f);
      if (!from) continue;
      for (const { target, names } of GRAPH.get(f) ?? []) {
        const to = folderOf(target);
        if (!to || to === from) continue;
        const classes = classesOf(target);
        for (const n of names)
          if (classes.has(n)) offenders.push(`${rel(f)} imports class ${n} from ${rel(target)}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
