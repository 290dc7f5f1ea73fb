import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BEGIN,
  END,
  renderErrorTables,
  renderProtocolTables,
  spliceGenerated,
} from '../../scripts/docs/render.js';
import { CLIENT_SCHEMAS, CLOSE_CODES, ERROR_CODES, ServerMessage } from '../../src/protocol/index.js';
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

  it('the README configuration table names every environment variable the server reads', () => {
    const readme = read('README.md');
    for (const name of ENV_VARS) expect(readme, name).toContain(`\`${name}\``);
  });
});
