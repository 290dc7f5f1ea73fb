import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACCEPTED_URL_FORMS, CLIENT_ERRORS } from '../../src/client/index.js';

const ROOT = join(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const squash = (text: string) => text.replace(/\s+/g, '');

describe('docs/sdk.md stays in step with the SDK and its tested example', () => {
  const doc = read('docs/sdk.md');

  it('"Start here" shows the script of examples/start-here/index.html (the page the e2e test runs), whole', () => {
    const html = read('examples/start-here/index.html');
    const script = /<script type="module">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    const block = /Its script, whole:\s*```js\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    expect(script.length).toBeGreaterThan(500);
    expect(squash(block)).toBe(squash(script));
  });

  it('every client error code is documented, and each connect failure has a troubleshooting row', () => {
    for (const code of Object.keys(CLIENT_ERRORS)) expect(doc, code).toContain(`\`${code}\``);
    const troubleshooting = doc.slice(doc.indexOf('## Troubleshooting by error code'));
    for (const code of [
      'UNAUTHORIZED',
      'INVALID_TOKEN',
      'NOT_FOUND',
      'CONNECTION_FAILED',
      'INVALID_URL',
      'TIMEOUT',
    ]) {
      expect(troubleshooting, code).toMatch(new RegExp(`^\\| \`${code}\` +\\|`, 'm'));
    }
  });

  it('the URL table covers every accepted form the SDK names', () => {
    const table = doc.slice(doc.indexOf('**Server URL.**'), doc.indexOf('**Token.**'));
    const schemed = ACCEPTED_URL_FORMS.filter((f) => /^(https|wss):\/\//.test(f));
    expect(schemed.length).toBeGreaterThanOrEqual(4);
    for (const form of schemed) expect(table, form).toContain(form.split(/\s+/)[0]);
  });

  it('the README documents /api/dev-token and the packages', () => {
    const readme = read('README.md');
    expect(readme).toContain('/api/dev-token');
    expect(readme).toContain('@parley-rtc/sdk');
  });
});
