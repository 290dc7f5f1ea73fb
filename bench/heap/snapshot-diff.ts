/**
 * Reads two V8 heap snapshots (`.heapsnapshot`, as `--heapsnapshot-signal` writes them) of one
 * process and diffs what they hold by kind of object: for JS objects and closures the constructor
 * or function name, for V8's internal arrays and strings their node type and name. Used by
 * bench/heap/idle-heap.ts to say, per idle connection, which objects the bytes are in.
 */
import { readFileSync } from 'node:fs';

interface RawSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapTally {
  /** Self size of every node, in bytes. */
  totalBytes: number;
  /** kind → bytes and count */
  byKind: Map<string, { bytes: number; count: number }>;
}

/** Self size and count per kind of node. */
export function tallySnapshot(path: string): HeapTally {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const iEdges = fields.indexOf('edge_count');
  const efields = raw.snapshot.meta.edge_fields;
  const etypes = raw.snapshot.meta.edge_types[0];
  const ewidth = efields.length;
  const eType = efields.indexOf('type');
  const eName = efields.indexOf('name_or_index');
  const eTo = efields.indexOf('to_node');
  const byKind = new Map<string, { bytes: number; count: number }>();
  let totalBytes = 0;
  const { nodes, strings, edges } = raw;
  // Plain objects and V8's internal arrays say little by name: an object is named by its first
  // property names, anything else unnamed by what holds it (its first strong retainer).
  const firstEdge = new Int32Array(nodes.length / width + 1);
  const retainer = new Int32Array(nodes.length / width).fill(-1);
  const retainerEdge = new Int32Array(nodes.length / width).fill(-1);
  for (let n = 0, e = 0; n < nodes.length / width; n++) {
    firstEdge[n] = e;
    const count = nodes[n * width + iEdges];
    for (let k = 0; k < count; k++, e += ewidth) {
      const et = etypes[edges[e + eType]];
      if (et === 'weak' || et === 'shortcut') continue;
      const to = edges[e + eTo] / width;
      if (retainer[to] === -1) {
        retainer[to] = n;
        retainerEdge[to] = e;
      }
    }
  }
  firstEdge[nodes.length / width] = edges.length;
  const nameOf = (n: number): string => {
    const type = types[nodes[n * width + iType]];
    return `${type} ${strings[nodes[n * width + iName]]}`.slice(0, 60);
  };
  const edgeLabel = (e: number): string => {
    const et = etypes[edges[e + eType]];
    return et === 'element' || et === 'hidden' ? `[${edges[e + eName]}]` : String(strings[edges[e + eName]]);
  };
  const propsOf = (n: number): string => {
    const names: string[] = [];
    for (let e = firstEdge[n]; e < firstEdge[n + 1] && names.length < 4; e += ewidth)
      if (etypes[edges[e + eType]] === 'property') names.push(strings[edges[e + eName]]);
    return names.join(',');
  };
  const heldBy = (n: number): string => {
    const r = retainer[n];
    if (r < 0) return '?';
    const rName = strings[nodes[r * width + iName]];
    const via = edgeLabel(retainerEdge[n]);
    const rType = types[nodes[r * width + iType]];
    if (rType === 'object' && rName === 'Object') return `{${propsOf(r)}}.${via}`;
    // An array says little by itself: name it by what holds the array.
    if (rType === 'object' && rName === 'Array' && retainer[r] >= 0)
      return `${nameOf(retainer[r])}.${edgeLabel(retainerEdge[r])}.${via}`;
    return `${nameOf(r)}.${via}`;
  };
  for (let i = 0; i < nodes.length; i += width) {
    const n = i / width;
    const type = types[nodes[i + iType]];
    const size = nodes[i + iSize];
    totalBytes += size;
    const name = strings[nodes[i + iName]];
    let kind: string;
    if (type === 'object' && name === 'Object') kind = `object {${propsOf(n)}} ← ${heldBy(n)}`;
    else if (
      type === 'array' ||
      type === 'hidden' ||
      type === 'string' ||
      type === 'number' ||
      type === 'concatenated string' ||
      type === 'sliced string' ||
      (type === 'object' && (name === 'Array' || name === 'system / Context'))
    )
      kind = `${type} ${name.slice(0, 30)} ← ${heldBy(n)}`;
    else if (type === 'closure') kind = `closure ${name} ← ${heldBy(n)}`;
    else if (type === 'object' || type === 'native') kind = `${type} ${name}`;
    else if (
      type === 'code' ||
      type === 'string' ||
      type === 'concatenated string' ||
      type === 'sliced string'
    )
      kind = type;
    else kind = `${type} ${strings[nodes[i + iName]].slice(0, 40)}`;
    const t = byKind.get(kind);
    if (t) {
      t.bytes += size;
      t.count++;
    } else byKind.set(kind, { bytes: size, count: 1 });
  }
  return { totalBytes, byKind };
}

export interface KindDelta {
  kind: string;
  bytesPerUnit: number;
  countPerUnit: number;
}

/** What `after` holds beyond `before`, per unit (e.g. per connection), largest first. */
export function diffTallies(before: HeapTally, after: HeapTally, units: number): KindDelta[] {
  const kinds = new Set([...before.byKind.keys(), ...after.byKind.keys()]);
  const out: KindDelta[] = [];
  for (const kind of kinds) {
    const b = before.byKind.get(kind) ?? { bytes: 0, count: 0 };
    const a = after.byKind.get(kind) ?? { bytes: 0, count: 0 };
    out.push({ kind, bytesPerUnit: (a.bytes - b.bytes) / units, countPerUnit: (a.count - b.count) / units });
  }
  return out.sort((x, y) => Math.abs(y.bytesPerUnit) - Math.abs(x.bytesPerUnit));
}
