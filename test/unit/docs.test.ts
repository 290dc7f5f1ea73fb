import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BEGIN,
  END,
  renderErrorTables,
  renderProtocolTables,
  renderServerApiTables,
  spliceGenerated,
} from '../../scripts/docs/render.js';
import {
  ADMIN_API,
  WebhookEvent,
  CLIENT_SCHEMAS,
  CLOSE_CODES,
  CLOSE_REASONS,
  closeCodeOf,
  ERROR_CODES,
  ERRORS,
  ServerMessage,
  type ClosingErrorCode,
  type ErrorSpec,
} from '../../src/protocol/index.js';
import { ENV_VARS } from '../../src/server/config/env.js';

const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8');

describe('docs are kept in step with the code', () => {
  it('docs/protocol.md holds exactly the reference generated from the schemas', () => {
    const doc = read('docs/protocol.md');
    expect(doc).toContain(BEGIN);
    expect(doc).toContain(END);
    expect(spliceGenerated(doc, renderProtocolTables())).toBe(doc); // run `npm run docs` if this fails
  });

  it('docs/protocol.md documents every client and server message type', () => {
    const doc = read('docs/protocol.md');
    const types = [...CLIENT_SCHEMAS.keys(), ...ServerMessage.options.map((o) => o.shape.type.value)];
    for (const type of types) expect(doc).toContain(`#### \`${type}\``);
  });

  it('docs/errors.md lists every error code and close code, and no code that does not exist', () => {
    const doc = read('docs/errors.md');
    expect(spliceGenerated(doc, renderErrorTables())).toBe(doc);
    for (const code of ERROR_CODES) expect(doc).toContain(`| \`${code}\` |`);
    for (const { code } of Object.values(CLOSE_CODES)) expect(doc).toContain(`| ${code} |`);
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...ERROR_CODES].sort());
  });

  it('CLOSE_CODES is derived from the catalogue: one name per code, the same names and numbers as ever', () => {
    const byName = Object.fromEntries(Object.entries(CLOSE_CODES).map(([name, c]) => [name, c.code]));
    // A public contract (the SDK and outside clients switch on these): extend, never rename.
    expect(byName).toEqual({
      NORMAL: 1000,
      GOING_AWAY: 1001,
      PROTOCOL_ERROR: 1002,
      INVALID_PAYLOAD: 1007,
      POLICY_VIOLATION: 1008,
      MESSAGE_TOO_BIG: 1009,
      INTERNAL_ERROR: 1011,
      TRY_AGAIN_LATER: 1013,
      BACKPRESSURE: 4008,
      UNAUTHORIZED: 4401,
      SESSION_REPLACED: 4409,
      REMOVED: 4410,
      QUOTA_EXCEEDED: 4429,
    });
    const codes = Object.values(CLOSE_CODES).map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    const closing = Object.entries(ERRORS).filter(([, spec]: [string, ErrorSpec]) => spec.close);
    // No error's close name shadows a non-error reason or another error's.
    expect(Object.keys(CLOSE_CODES)).toHaveLength(Object.keys(CLOSE_REASONS).length + closing.length);
    for (const [code, spec] of closing as [ClosingErrorCode, Required<ErrorSpec>][]) {
      expect(closeCodeOf(code)).toBe(spec.close.code);
      expect(CLOSE_CODES[spec.close.name as keyof typeof CLOSE_CODES].code).toBe(spec.close.code);
    }
  });

  it('docs/server-api.md holds exactly the endpoints and webhook events generated from the schemas', () => {
    const doc = read('docs/server-api.md');
    expect(spliceGenerated(doc, renderServerApiTables())).toBe(doc); // run `npm run docs` if this fails
    for (const [op, ep] of Object.entries(ADMIN_API)) {
      expect(doc).toContain(`### ${op}`);
      expect(doc).toContain(`\`${ep.method} ${ep.path}\``);
    }
    for (const e of WebhookEvent.options) expect(doc).toContain(`### \`${e.shape.event.value}\``);
  });

  it('the README configuration table names every environment variable the server reads', () => {
    const readme = read('README.md');
    for (const name of ENV_VARS) expect(readme, name).toContain(`\`${name}\``);
  });

  it('docs/sdk.md shows each example page’s script whole, as the file has it', () => {
    const doc = read('docs/sdk.md');
    for (const file of ['examples/start-here/index.html', 'examples/conference/index.html']) {
      const html = read(file);
      const script = /<script type="module">\n([\s\S]*?)\n\s*<\/script>/.exec(html)?.[1] ?? '';
      const indent = Math.min(
        ...script
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => /^ */.exec(l)![0].length),
      );
      const dedented = script
        .split('\n')
        .map((l) => l.slice(indent))
        .join('\n');
      const at = doc.indexOf(`(../${file})`);
      expect(at, `docs/sdk.md links ${file}`).toBeGreaterThan(-1);
      const open = doc.indexOf('```js\n', at) + '```js\n'.length;
      const block = doc.slice(open, doc.indexOf('\n```', open));
      expect(dedented.length).toBeGreaterThan(500);
      expect(block).toBe(dedented);
    }
  });
});
