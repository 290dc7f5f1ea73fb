import type { z } from 'zod';

/**
 * Compiles a Zod schema into one straight-line JavaScript checker (issue 14: zod's generic
 * machinery was ~1 µs of every relayed message). Zod stays the single source of truth: the checker
 * is generated from the schema tree at start-up, and test/unit/schema-compiler.test.ts runs the
 * fuzz corpus and generated edge cases through both and proves they accept and reject the same
 * inputs with the same output.
 *
 * A checker only decides and builds the parsed value: it returns `REJECT` for anything the schema
 * refuses, and the caller then asks Zod itself for the error (so error codes, messages and paths
 * are Zod's, by construction). It compiles only the features whose semantics it reproduces
 * exactly — objects (unknown keys stripped), strings with length and regex checks, finite numbers
 * with safe-integer and inclusive or exclusive bounds, literals, `.nullable()`, `.optional()` —
 * and refuses anything else (transforms, defaults, refinements, unions, coercion, other formats,
 * strict or catch-all objects…) by throwing {@link Uncompilable}: that schema stays on Zod.
 */

/** A checker's verdict for an input the schema refuses. */
export const REJECT: unique symbol = Symbol('schema-compiler.reject');
export type Checker = ((input: unknown) => unknown) & {
  /**
   * Compiled with `exactKey` and that member found: how deep objects nest in it (the member itself
   * is level 0). After an accepted call, {@link lastExact} says whether the input's member is
   * exactly the output's. Undefined otherwise.
   */
  readonly exactDepth?: number;
};

/**
 * What the last accepted call of a checker compiled with `exactKey` found, to be read right after
 * it (one object, written by every such call: nothing is allocated to say it). `exact`: the
 * input's member is exactly what the schema outputs for it, for an input JSON.parse gave (plain
 * objects, own enumerable keys): every object in it has the prototype of a JSON object and no key
 * the schema strips, so the output is a copy with the same keys and the very same primitives, what
 * relay-splice.ts's `sameTree` would say of input and output. `keys`: then, how many object keys
 * the member holds at every depth (relay-splice.ts's `countKeys`).
 */
export const lastExact = { exact: false, keys: 0 };

/** The schema uses something the compiler does not reproduce exactly; `path` says where. */
export class Uncompilable extends Error {
  constructor(
    readonly path: string,
    readonly feature: string,
  ) {
    super(`cannot compile ${feature} at ${path || '(root)'}`);
  }
}

/** What the compiler reads of a Zod v4 schema's internals (`schema._zod`). */
interface ZodInternals {
  def: {
    type: string;
    checks?: { _zod: { def: CheckDef } }[];
    coerce?: boolean;
    format?: string;
    shape?: Record<string, unknown>;
    catchall?: unknown;
    innerType?: unknown;
    values?: unknown[];
  };
  optin?: string;
  optout?: string;
  traits?: Set<string>;
}

interface CheckDef {
  check: string;
  minimum?: unknown;
  maximum?: unknown;
  format?: string;
  pattern?: unknown;
  value?: unknown;
  inclusive?: boolean;
  when?: ((payload: unknown) => boolean) & { name?: string };
}

function internals(schema: unknown, path: string): ZodInternals {
  const zod = (schema as { _zod?: ZodInternals } | null)?._zod;
  if (!zod || typeof zod.def?.type !== 'string') throw new Uncompilable(path, 'a non-Zod value');
  return zod;
}

/** Keys the generated code reads as plain properties: no prototype member, no `__proto__`. */
function plainKey(key: string, path: string): string {
  if (key === '__proto__' || key in Object.prototype) throw new Uncompilable(path, `the key "${key}"`);
  return JSON.stringify(key);
}

class Generator {
  readonly consts: unknown[] = [];
  #n = 0;
  /** The root member whose exactness the checker reports (`compileSchema`'s `exactKey`). */
  readonly #exactKey: string | null;
  /** Inside that member: its objects count their keys and check their prototype. */
  #tracking = false;
  /** Object nesting inside that member, while generating it; the deepest seen. */
  #level = -1;
  maxLevel = -1;
  /** The member was in the root object's shape. */
  tracked = false;

  constructor(exactKey: string | null) {
    this.#exactKey = exactKey;
  }

  local(prefix: string): string {
    return `${prefix}${this.#n++}`;
  }

  const(value: unknown): string {
    this.consts.push(value);
    return `K[${this.consts.length - 1}]`;
  }

  /** Code that validates the value in `v` and assigns its parsed value to `out`, or returns REJECT. */
  gen(schema: unknown, v: string, out: string, path: string): string {
    const zod = internals(schema, path);
    const def = zod.def;
    if (def.coerce) throw new Uncompilable(path, 'coercion');
    // A schema that is itself a check (z.int32(), z.email(), …) runs that check before its own.
    if (zod.traits?.has('$ZodCheck'))
      throw new Uncompilable(path, `the ${def.type} format ${def.format ?? '?'}`);
    const checks = def.checks ?? [];
    if (checks.length > 0 && def.type !== 'string' && def.type !== 'number')
      throw new Uncompilable(path, `checks on ${def.type}`);
    switch (def.type) {
      case 'string':
        return this.#string(def, checks, v, out, path);
      case 'number':
        return this.#number(checks, v, out, path);
      case 'literal':
        return this.#literal(def.values ?? [], v, out, path);
      case 'nullable':
        return `if (${v} === null) ${out} = null; else {\n${this.gen(def.innerType, v, out, path)}\n}`;
      case 'optional': {
        const inner = internals(def.innerType, path);
        if (inner.optin === 'defaulted') throw new Uncompilable(path, 'a default');
        return `if (${v} === undefined) ${out} = undefined; else {\n${this.gen(def.innerType, v, out, path)}\n}`;
      }
      case 'object':
        return this.#object(def, v, out, path);
      default:
        throw new Uncompilable(path, `a ${def.type} schema`);
    }
  }

  #string(
    def: ZodInternals['def'],
    checks: { _zod: { def: CheckDef } }[],
    v: string,
    out: string,
    path: string,
  ) {
    if (def.format !== undefined) throw new Uncompilable(path, `the string format ${def.format}`);
    const conds = [`typeof ${v} !== 'string'`];
    for (const { _zod } of checks) {
      const c = _zod.def;
      const lengthCheck = c.check === 'min_length' || c.check === 'max_length';
      if (c.when !== undefined && !(lengthCheck && c.when.name === '_whenHasLength'))
        throw new Uncompilable(path, `a conditional ${c.check} check`);
      // Zod measures strings in code points, counting them only where the UTF-16 length leaves
      // the verdict in doubt (a code point is one or two units); so does this.
      if (c.check === 'min_length' && Number.isSafeInteger(c.minimum)) {
        const min = c.minimum as number;
        conds.push(`${v}.length < ${min}`);
        if (min > 0) conds.push(`(${v}.length < ${min * 2} && L(${v}) < ${min})`);
      } else if (c.check === 'max_length' && Number.isSafeInteger(c.maximum))
        conds.push(`(${v}.length > ${String(c.maximum)} && L(${v}) > ${String(c.maximum)})`);
      else if (c.check === 'string_format' && c.format === 'regex' && c.pattern instanceof RegExp) {
        // A global or sticky regex carries state between calls (zod resets lastIndex): not compiled.
        if (c.pattern.global || c.pattern.sticky) throw new Uncompilable(path, 'a global or sticky regex');
        conds.push(`!${this.const(c.pattern)}.test(${v})`);
      } else throw new Uncompilable(path, `the string check ${c.check}${c.format ? ` (${c.format})` : ''}`);
    }
    return `if (${conds.join(' || ')}) return R;\n${out} = ${v};`;
  }

  #number(checks: { _zod: { def: CheckDef } }[], v: string, out: string, path: string) {
    // Zod: a number that is not NaN and finite (JSON's 1e309 parses to Infinity: refused).
    const conds = [`typeof ${v} !== 'number'`, `!Number.isFinite(${v})`];
    for (const { _zod } of checks) {
      const c = _zod.def;
      if (c.when !== undefined) throw new Uncompilable(path, `a conditional ${c.check} check`);
      if (c.check === 'number_format' && c.format === 'safeint') conds.push(`!Number.isSafeInteger(${v})`);
      else if ((c.check === 'greater_than' || c.check === 'less_than') && typeof c.value === 'number') {
        if (!Number.isFinite(c.value)) throw new Uncompilable(path, 'a non-finite bound');
        const bound = Object.is(c.value, -0) ? '0' : String(c.value);
        const op = c.check === 'greater_than' ? (c.inclusive ? '<' : '<=') : c.inclusive ? '>' : '>=';
        conds.push(`${v} ${op} ${bound}`);
      } else throw new Uncompilable(path, `the number check ${c.check}${c.format ? ` (${c.format})` : ''}`);
    }
    return `if (${conds.join(' || ')}) return R;\n${out} = ${v};`;
  }

  #literal(values: unknown[], v: string, out: string, path: string) {
    // Zod compares with a Set (SameValueZero): `===` agrees for strings, booleans, null and finite numbers.
    const ok = values.map((value) => {
      if (typeof value === 'string' || typeof value === 'boolean' || value === null)
        return JSON.stringify(value);
      if (typeof value === 'number' && Number.isFinite(value))
        return Object.is(value, -0) ? '0' : String(value);
      throw new Uncompilable(path, `the literal ${typeof value}`);
    });
    if (ok.length === 0) throw new Uncompilable(path, 'an empty literal');
    return `if (${ok.map((lit) => `${v} !== ${lit}`).join(' && ')}) return R;\n${out} = ${v};`;
  }

  #object(def: ZodInternals['def'], v: string, out: string, path: string) {
    // No catch-all is zod's default: unknown keys are stripped (never copied to the output).
    if (def.catchall !== undefined) throw new Uncompilable(path, 'a strict or catch-all object');
    const shape = def.shape ?? {};
    if (Object.getOwnPropertySymbols(shape).length > 0) throw new Uncompilable(path, 'symbol keys');
    const o = this.local('o');
    const root = path === '';
    const tracking = this.#tracking;
    const n = this.local('n');
    if (tracking) {
      this.#level++;
      this.maxLevel = Math.max(this.maxLevel, this.#level);
    }
    const lines = [
      `if (typeof ${v} !== 'object' || ${v} === null || Array.isArray(${v})) return R;`,
      `const ${o} = {};`,
    ];
    if (tracking) lines.push(`let ${n} = 0;`);
    for (const [key, child] of Object.entries(shape)) {
      const at = path ? `${path}.${key}` : key;
      const k = plainKey(key, at);
      const zod = internals(child, at);
      const cv = this.local('v');
      const co = this.local('t');
      const exactMember = root && key === this.#exactKey;
      if (exactMember) {
        this.#tracking = true;
        this.tracked = true;
      }
      const code = this.gen(child, cv, co, at);
      if (exactMember) this.#tracking = false;
      const body = `let ${co};\n${code}\n${o}[${k}] = ${co};${tracking ? ` ${n}++;` : ''}`;
      lines.push(`const ${cv} = ${v}[${k}];`);
      if (zod.optin === undefined && zod.optout === undefined) {
        // Required: nothing compiled here accepts undefined without being optional, so an absent
        // key fails in the child's own check, as in zod.
        lines.push(body);
      } else if (zod.optin === 'optional' && zod.optout === 'optional') {
        // Absent: no key in the output. Present (even as undefined): the child decides.
        lines.push(`if (${cv} !== undefined || ${k} in ${v}) {\n${body}\n}`);
      } else {
        throw new Uncompilable(at, `optionality ${String(zod.optin)}/${String(zod.optout)}`);
      }
    }
    if (tracking) {
      // Exact: a JSON object's prototype, and no key beside the ones copied (none stripped).
      const c = this.local('c');
      lines.push(
        `if (E) { if (Object.getPrototypeOf(${v}) !== P) E = false; else { let ${c} = 0; for (const _ in ${v}) ${c}++; if (${c} !== ${n}) E = false; else C += ${c}; } }`,
      );
      this.#level--;
    }
    lines.push(`${out} = ${o};`);
    return lines.join('\n');
  }
}

/**
 * One checker for `schema`: returns the value Zod's `parse` would return, or {@link REJECT} where
 * Zod would fail. Throws {@link Uncompilable} for a schema it cannot reproduce exactly.
 * `exactKey`: a member of the root object (a message's `payload`) whose exactness each accepted
 * call reports in {@link lastExact}.
 */
export function compileSchema(schema: z.ZodType, opts: { exactKey?: string } = {}): Checker {
  const g = new Generator(opts.exactKey ?? null);
  const code = g.gen(schema, 'input', 'out', '');
  const body = g.tracked
    ? `let out;\nlet E = true;\nlet C = 0;\n${code}\nX.exact = E;\nX.keys = C;\nreturn out;`
    : `let out;\n${code}\nreturn out;`;
  // The generated code only reads its input and the constants (regexes) taken from the schema:
  // no text from outside the schema tree reaches it (keys are JSON-quoted, bounds are numbers).
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('R', 'K', 'L', 'X', 'P', `return function check(input) {\n${body}\n};`) as (
    r: typeof REJECT,
    k: unknown[],
    l: (s: string) => number,
    x: typeof lastExact,
    p: object,
  ) => (input: unknown) => unknown;
  const check = make(REJECT, g.consts, codePointLength, lastExact, Object.prototype);
  if (!g.tracked) return check;
  // A member with no object in it (a string, say) has depth 0 as far as nesting goes.
  return Object.assign(check, { exactDepth: Math.max(0, g.maxLevel) });
}

/** Unicode code points in `s`: UTF-16 units, a surrogate pair counting once (a lone surrogate: once). */
function codePointLength(s: string): number {
  let count = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}

/**
 * Compiles each schema that can be compiled (`opts` as {@link compileSchema}'s). `refused` says
 * why the others stay on Zod.
 */
export function compileSchemas<S extends z.ZodType>(
  schemas: ReadonlyMap<string, S>,
  only?: (type: string) => boolean,
  opts: { exactKey?: string } = {},
): { checkers: Map<string, Checker>; refused: Map<string, Uncompilable> } {
  const checkers = new Map<string, Checker>();
  const refused = new Map<string, Uncompilable>();
  for (const [type, schema] of schemas) {
    if (only && !only(type)) continue;
    try {
      checkers.set(type, compileSchema(schema, opts));
    } catch (err) {
      if (!(err instanceof Uncompilable)) throw err;
      refused.set(type, err);
    }
  }
  return { checkers, refused };
}
