import type { ServerResponse } from 'node:http';
import { ERRORS, errorBody, type ErrorCode, type HttpErrorBody } from '../../protocol/index.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(data);
}

/** HTTP errors use the same catalogue as the WebSocket: `{error: {code, message}}`. */
export function sendError(res: ServerResponse, code: ErrorCode, message?: string): void {
  const spec = ERRORS[code];
  const status = 'httpStatus' in spec ? spec.httpStatus : 500;
  sendJson(res, status, { error: errorBody(code, message) } satisfies HttpErrorBody);
}
