/**
 * Renders the generated parts of docs/protocol.md and docs/errors.md from the Zod schemas and the
 * error catalogue, the single sources of truth. `npm run docs` writes them; a test fails when the
 * committed docs differ from what this renders.
 */
import { z } from 'zod';
import {
  ADMIN_API,
  ClientMessage,
  CLOSE_CODES,
  ERRORS,
  ServerMessage,
  WebhookEvent,
  type AdminEndpoint,
  type ErrorSpec,
} from '../../src/protocol/index.js';

type Json = {
  type?: string | string[];
  properties?: Record<string, Json>;
  required?: string[];
  items?: Json;
  anyOf?: Json[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  description?: string;
  default?: unknown;
};

export const BEGIN = '<!-- BEGIN GENERATED: do not edit by hand; run `npm run docs` -->';
export const END = '<!-- END GENERATED -->';

function typeOf(s: Json): string {
  if (s.anyOf) {
    const nonNull = s.anyOf.filter((a) => a.type !== 'null');
    const nullable = nonNull.length < s.anyOf.length;
    return nonNull.map(typeOf).join(' \\| ') + (nullable ? ' or null' : '');
  }
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  const t = Array.isArray(s.type) ? s.type.join('|') : (s.type ?? 'any');
  const bounds: string[] = [];
  if (s.minLength !== undefined || s.maxLength !== undefined)
    bounds.push(`length ${s.minLength ?? 0}–${s.maxLength ?? '∞'}`);
  if (s.minimum !== undefined || s.maximum !== undefined)
    bounds.push(`${s.minimum ?? '-∞'}–${s.maximum ?? '∞'}`);
  if (s.pattern) bounds.push(`\`${s.pattern.replace(/\|/g, '\\|')}\``);
  if (t === 'array' && s.items) return `array of ${typeOf(s.items)}`;
  return bounds.length ? `${t} (${bounds.join(', ')})` : t;
}

function rows(schema: Json, prefix = ''): string[] {
  const out: string[] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const path = prefix + name;
    const notes = [
      prop.description,
      prop.default !== undefined ? `default ${JSON.stringify(prop.default)}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    out.push(`| \`${path}\` | ${typeOf(prop)} | ${required.has(name) ? 'yes' : 'no'} | ${notes} |`);
    const objectVariant = prop.properties ? prop : prop.anyOf?.find((a) => a.properties);
    if (objectVariant) out.push(...rows(objectVariant, `${path}.`));
    if (prop.items?.properties) out.push(...rows(prop.items, `${path}[].`));
  }
  return out;
}

function renderFamily(title: string, options: readonly z.ZodObject[], io: 'input' | 'output'): string {
  const parts = [`### ${title}`, ''];
  for (const schema of options) {
    const shape = schema.shape as { type: z.ZodLiteral<string>; payload: z.ZodType };
    const type = shape.type.value;
    const payload = z.toJSONSchema(shape.payload, { io, unrepresentable: 'any' }) as Json;
    parts.push(`#### \`${type}\``, '', schema.description ?? '', '');
    const r = rows(payload);
    if (r.length === 0) {
      parts.push('Payload: `{}` (may be omitted).', '');
    } else {
      parts.push('| field | type | required | notes |', '|---|---|---|---|', ...r, '');
    }
  }
  return parts.join('\n');
}

export function renderProtocolTables(): string {
  return [
    renderFamily('Client → server', ClientMessage.options, 'input'),
    renderFamily('Server → client', ServerMessage.options, 'output'),
  ].join('\n');
}

export function renderErrorTables(): string {
  const errorRows = Object.entries(ERRORS).map(([code, spec]: [string, ErrorSpec]) => {
    const http = spec.httpStatus === undefined ? '' : String(spec.httpStatus);
    const close = spec.close ? String(spec.close.code) : '';
    return `| \`${code}\` | ${spec.message} | ${http} | ${close} | ${spec.hint} |`;
  });
  const closeRows = Object.entries(CLOSE_CODES).map(
    ([name, c]) => `| ${c.code} | \`${name}\` | ${c.meaning} |`,
  );
  return [
    '## Error codes',
    '',
    '| code | message | HTTP status | close code | what to do |',
    '|---|---|---|---|---|',
    ...errorRows,
    '',
    '## WebSocket close codes',
    '',
    '| code | name | meaning |',
    '|---|---|---|',
    ...closeRows,
    '',
  ].join('\n');
}

function fieldTable(schema: z.ZodType, io: 'input' | 'output', empty: string): string[] {
  const r = rows(z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json);
  return r.length === 0
    ? [empty, '']
    : ['| field | type | required | notes |', '|---|---|---|---|', ...r, ''];
}

/** docs/server-api.md: every endpoint of ADMIN_API, then the webhook event catalogue. */
export function renderServerApiTables(): string {
  const parts = ['## Endpoints', '', '| method | path | operation |', '|---|---|---|'];
  const entries = Object.entries(ADMIN_API) as [string, AdminEndpoint][];
  for (const [op, ep] of entries)
    parts.push(`| ${ep.method} | \`${ep.path}\` | [\`${op}\`](#${op.toLowerCase()}) |`);
  parts.push('');
  for (const [op, ep] of entries) {
    parts.push(`### ${op}`, '', `\`${ep.method} ${ep.path}\``, '', ep.summary, '');
    if (ep.params) parts.push('Path parameters:', '', ...fieldTable(ep.params, 'input', ''));
    if (ep.body) parts.push('Body (JSON):', '', ...fieldTable(ep.body, 'input', 'Body: `{}`.'));
    parts.push('Response (200):', '', ...fieldTable(ep.response, 'output', 'Response: `{}`.'));
  }
  parts.push(
    '## Webhook events',
    '',
    'Every body has `id`, `event`, `createdAt` and `node`, then the fields below.',
    '',
  );
  for (const schema of WebhookEvent.options) {
    const shape = schema.shape as { event: z.ZodLiteral<string> } & Record<string, z.ZodType>;
    const envelope = new Set(['id', 'event', 'createdAt', 'node']);
    const own = z.object(Object.fromEntries(Object.entries(shape).filter(([k]) => !envelope.has(k))));
    parts.push(`### \`${shape.event.value}\``, '', schema.description ?? '', '');
    parts.push(...fieldTable(own, 'output', 'No other field.'));
  }
  return parts.join('\n');
}

/** Replaces the generated region of a doc, keeping the hand-written text around it. */
export function spliceGenerated(doc: string, generated: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error('doc lacks the BEGIN/END GENERATED markers');
  return `${doc.slice(0, start + BEGIN.length)}\n\n${generated}\n${doc.slice(end)}`;
}
