/** `npm run docs`: regenerates the schema-derived parts of docs/protocol.md, docs/errors.md and docs/server-api.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  renderErrorTables,
  renderProtocolTables,
  renderServerApiTables,
  spliceGenerated,
} from './docs/render.js';

for (const [file, render] of [
  ['docs/protocol.md', renderProtocolTables],
  ['docs/errors.md', renderErrorTables],
  ['docs/server-api.md', renderServerApiTables],
] as const) {
  const before = readFileSync(file, 'utf8');
  const after = spliceGenerated(before, render());
  if (after !== before) writeFileSync(file, after);
  process.stdout.write(`${file}: ${after === before ? 'up to date' : 'updated'}\n`);
}
