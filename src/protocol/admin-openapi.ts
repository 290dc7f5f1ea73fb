/**
 * The OpenAPI 3.1 document of the server API, generated from ADMIN_API's Zod schemas: served at
 * `/api/admin/openapi.json` and rendered into docs/server-api.md, so neither can drift from the code.
 */
import { z } from 'zod';
import { ADMIN_API, type AdminEndpoint } from './admin.js';
import { ERROR_CODES, ERRORS, type ErrorSpec } from './errors.js';
import { PROTOCOL_VERSION } from './common.js';

type JsonSchema = Record<string, unknown>;

/** A schema as plain JSON Schema (draft 2020-12, which OpenAPI 3.1 uses), without its `$schema` line. */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

const ErrorResponse = {
  description: 'An error from the catalogue (docs/errors.md)',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/HttpErrorBody' } } },
};

/** The error statuses an endpoint may answer with, besides its own (auth, limits, validation). */
function errorResponses(ep: AdminEndpoint): Record<string, typeof ErrorResponse> {
  const statuses = new Set([401, 403, 429, 500, 503]);
  if (ep.params || ep.body) statuses.add(400);
  if (ep.body) statuses.add(413);
  if (ep.path.includes('{')) statuses.add(404);
  if (/mute|floor/.test(ep.path)) statuses.add(409);
  return Object.fromEntries([...statuses].sort().map((s) => [String(s), ErrorResponse]));
}

export function adminOpenApi(): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [operationId, ep] of Object.entries(ADMIN_API) as [string, AdminEndpoint][]) {
    const parameters = ep.params
      ? Object.entries(ep.params.shape).map(([name, s]) => ({
          name,
          in: 'path',
          required: true,
          schema: jsonSchema(s as z.ZodType, 'input'),
        }))
      : undefined;
    const operation: Record<string, unknown> = {
      operationId,
      summary: ep.summary,
      ...(parameters ? { parameters } : {}),
      ...(ep.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: jsonSchema(ep.body, 'input') } },
            },
          }
        : {}),
      responses: {
        '200': {
          description: 'Success',
          content: { 'application/json': { schema: jsonSchema(ep.response, 'output') } },
        },
        ...errorResponses(ep),
      },
    };
    (paths[ep.path] ??= {})[ep.method.toLowerCase()] = operation;
  }
  const codes = ERROR_CODES.filter((c) => (ERRORS[c] as ErrorSpec).httpStatus !== undefined);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Parley server API',
      version: String(PROTOCOL_VERSION),
      description:
        'Steer rooms, calls and the PTT floor from an application backend. Authenticate with `Authorization: Bearer <ADMIN_API_KEY>` or a JWT whose claims carry `admin: true`.',
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        HttpErrorBody: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string', enum: codes },
                message: { type: 'string' },
                details: { type: 'object', additionalProperties: true },
              },
            },
          },
        },
      },
    },
  };
}
