import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { RecordingList } from '../../protocol/index.js';
import { mayJoinRoom, type Identity } from '../auth/claims.js';
import type { TokenVerifier } from '../auth/token-verifier.js';
import { defaults } from '../config/defaults.js';
import type { Logger } from '../logger.js';
import { publicRecording, type RecordingIndex } from '../state/recording-index.js';
import { sendError, sendJson } from './respond.js';

export interface RecordingsApiDeps {
  index: RecordingIndex;
  /** RECORDINGS_DIR, absolute. */
  dir: string;
  verifier: TokenVerifier;
  log: Logger;
}

const LIST_PATH = /^\/api\/rooms\/([^/]+)\/recordings$/;
const FILE_PATH = /^\/api\/recordings\/([^/]+)$/;

/** One byte range of a file of `size` bytes, from a Range header; null: unsatisfiable or malformed. */
export function parseRange(header: string, size: number): { start: number; end: number } | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    // The last N bytes.
    const n = Number(m[2]);
    if (n === 0) return null;
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size || end < start) return null;
  return { start, end };
}

/**
 * The recordings API (the JWT as for /api/turn-credentials, in `Authorization: Bearer`):
 * - `GET /api/rooms/:roomId/recordings?since=&limit=`: the room's recordings, newest first;
 * - `GET /api/recordings/:id`: the Ogg Opus file, with single byte ranges (206, 416).
 * 401 without a valid token; 403 when the token may not join the room or has `canReplay: false`;
 * 404 for an unknown recording.
 * Returns false when the path is not one of these.
 */
export function createRecordingsApi(deps: RecordingsApiDeps) {
  async function identify(req: IncomingMessage, res: ServerResponse): Promise<Identity | null> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) {
      res.setHeader('www-authenticate', 'Bearer');
      sendError(res, 'UNAUTHORIZED');
      return null;
    }
    const result = await deps.verifier.verify(match[1]);
    if (!result.ok) {
      deps.log.info({ reason: result.reason }, 'recordings refused: bad token');
      res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
      sendError(res, 'UNAUTHORIZED');
      return null;
    }
    return result.identity;
  }

  function allowed(identity: Identity, roomId: string, res: ServerResponse): boolean {
    if (!mayJoinRoom(identity, roomId)) {
      sendError(res, 'FORBIDDEN', 'your token does not allow this room');
      return false;
    }
    if (!identity.canReplay && !identity.admin) {
      sendError(res, 'FORBIDDEN', 'your token does not grant replay');
      return false;
    }
    return true;
  }

  async function list(req: IncomingMessage, res: ServerResponse, roomId: string, url: URL): Promise<void> {
    const identity = await identify(req, res);
    if (!identity || !allowed(identity, roomId, res)) return;
    const sinceRaw = url.searchParams.get('since');
    const limitRaw = url.searchParams.get('limit');
    const since = sinceRaw === null ? undefined : Number(sinceRaw);
    const limit = limitRaw === null ? defaults.recordingListDefaultLimit : Number(limitRaw);
    if (since !== undefined && (!Number.isFinite(since) || sinceRaw === '')) {
      return sendError(res, 'INVALID_MESSAGE', 'since: expected a time in ms since the epoch');
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > defaults.recordingListMaxLimit) {
      return sendError(
        res,
        'INVALID_MESSAGE',
        `limit: expected an integer from 1 to ${defaults.recordingListMaxLimit}`,
      );
    }
    const records = await deps.index.list(roomId, { ...(since !== undefined ? { since } : {}), limit });
    sendJson(res, 200, { recordings: records.map(publicRecording) } satisfies RecordingList);
  }

  async function file(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const identity = await identify(req, res);
    if (!identity) return;
    const record = await deps.index.get(id);
    if (!record || record.status === 'recording') return sendError(res, 'RECORDING_NOT_FOUND');
    if (!allowed(identity, record.roomId, res)) return;
    const path = join(deps.dir, record.file);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      deps.log.warn({ id, node: record.nodeId }, 'recording file missing here (RECORDINGS_DIR not shared?)');
      return sendError(res, 'RECORDING_NOT_FOUND', 'the recording’s file is not on this server');
    }
    const headers: Record<string, string> = {
      'content-type': 'audio/ogg',
      'accept-ranges': 'bytes',
      'cache-control': 'private, max-age=86400, immutable',
    };
    const range = req.headers.range;
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range !== undefined) {
      const r = parseRange(range, size);
      if (!r) {
        res.setHeader('content-range', `bytes */${size}`);
        return sendError(res, 'RANGE_NOT_SATISFIABLE');
      }
      ({ start, end } = r);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['content-length'] = String(size === 0 ? 0 : end - start + 1);
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) return void res.end();
    const stream = createReadStream(path, { start, end });
    stream.on('error', (err) => {
      deps.log.error({ err, id }, 'recording read failed');
      res.destroy();
    });
    stream.pipe(res);
  }

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const listMatch = LIST_PATH.exec(url.pathname);
    if (listMatch) {
      const roomId = decoded(listMatch[1]);
      if (roomId === null) sendError(res, 'NOT_FOUND');
      else await list(req, res, roomId, url);
      return true;
    }
    const fileMatch = FILE_PATH.exec(url.pathname);
    if (fileMatch) {
      const id = decoded(fileMatch[1]);
      if (id === null) sendError(res, 'RECORDING_NOT_FOUND');
      else await file(req, res, id);
      return true;
    }
    return false;
  };
}

function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
