import type { HttpErrorBody } from '../protocol/errors.js';
import type { Recording } from '../protocol/common.js';
import type { RecordingList, StationInfo, TurnCredentials } from '../protocol/http.js';
import { ParleyError, type ParleyErrorCode } from './errors.js';
import { resolveToken, type TokenSource } from './token.js';

export type { Recording, StationInfo, TurnCredentials };

type Fetch = typeof fetch;

async function getJson<T>(url: string, init: RequestInit, fetchImpl: Fetch): Promise<T> {
  let res: Response;
  try {
    res = await fetchImpl(url, init);
  } catch (err) {
    throw ParleyError.from(err, 'CONNECTION_FAILED');
  }
  if (!res.ok) {
    let code: ParleyErrorCode = res.status === 401 ? 'UNAUTHORIZED' : 'INTERNAL';
    let message = `HTTP ${res.status}`;
    try {
      // The server's HTTP error body; read leniently (a proxy may answer with something else).
      const body = (await res.json()) as { error?: Partial<HttpErrorBody['error']> } | null;
      if (body?.error?.code) code = body.error.code;
      if (body?.error?.message) message = body.error.message;
    } catch {
      // not our JSON error body
    }
    throw new ParleyError(code, message, { details: { status: res.status } });
  }
  return (await res.json()) as T;
}

/** Fetches `GET /api/station` from the server's HTTP base (e.g. `https://voice.example.com`). */
export function fetchStation(baseUrl: string, fetchImpl: Fetch = fetch): Promise<StationInfo> {
  return getJson<StationInfo>(`${baseUrl}/api/station`, {}, fetchImpl);
}

/** Fetches `GET /api/turn-credentials` (TURN REST scheme) with the user's JWT. */
export async function fetchTurnCredentials(
  baseUrl: string,
  token: TokenSource,
  fetchImpl: Fetch = fetch,
): Promise<TurnCredentials> {
  const jwt = await resolveToken(token);
  return getJson<TurnCredentials>(
    `${baseUrl}/api/turn-credentials`,
    { headers: { authorization: `Bearer ${jwt}` } },
    fetchImpl,
  );
}

export interface RecordingQuery {
  /** Only recordings started at or after this server time (ms). */
  since?: number;
  /** At most this many (server default 50, at most 500). */
  limit?: number;
}

/** `GET /api/rooms/:roomId/recordings`: the room's recorded talk bursts, newest first. */
export async function fetchRecordings(
  baseUrl: string,
  token: TokenSource,
  roomId: string,
  query: RecordingQuery = {},
  fetchImpl: Fetch = fetch,
): Promise<Recording[]> {
  const jwt = await resolveToken(token);
  const params = new URLSearchParams();
  if (query.since !== undefined) params.set('since', String(query.since));
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  const qs = params.size > 0 ? `?${params.toString()}` : '';
  const body = await getJson<RecordingList>(
    `${baseUrl}/api/rooms/${encodeURIComponent(roomId)}/recordings${qs}`,
    { headers: { authorization: `Bearer ${jwt}` } },
    fetchImpl,
  );
  return body.recordings;
}

/** `GET /api/recordings/:id`: the recording's Ogg Opus file. */
export async function fetchRecordingAudio(
  baseUrl: string,
  token: TokenSource,
  id: string,
  fetchImpl: Fetch = fetch,
): Promise<Blob> {
  const jwt = await resolveToken(token);
  let res: Response;
  try {
    res = await fetchImpl(`${baseUrl}/api/recordings/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
  } catch (err) {
    throw ParleyError.from(err, 'CONNECTION_FAILED');
  }
  if (!res.ok) await getJson(res.url, {}, () => Promise.resolve(res)); // throws the server's error
  return res.blob();
}

/** STUN from the station, TURN with credentials: the `iceServers` of an RTCConfiguration. */
export function iceServersFrom(stunUrls: readonly string[], turn: TurnCredentials | null): RTCIceServer[] {
  const servers: RTCIceServer[] = [];
  if (stunUrls.length > 0) servers.push({ urls: [...stunUrls] });
  if (turn && turn.uris.length > 0) {
    servers.push({ urls: [...turn.uris], username: turn.username, credential: turn.password });
  }
  return servers;
}

export interface IceServerProviderOptions {
  /** The server's HTTP base, e.g. `https://voice.example.com`. */
  baseUrl: string;
  token: TokenSource;
  fetch?: Fetch;
}

/**
 * Builds `iceServers` from the station's STUN servers and fresh TURN credentials, cached until
 * 80 % of their lifetime. A server without TURN (503) yields STUN only.
 */
export class IceServerProvider {
  readonly #opts: IceServerProviderOptions;
  #station: Promise<StationInfo> | null = null;
  #turn: { creds: TurnCredentials | null; until: number } | null = null;

  constructor(options: IceServerProviderOptions) {
    this.#opts = options;
  }

  async get(): Promise<RTCIceServer[]> {
    const fetchImpl = this.#opts.fetch ?? fetch;
    this.#station ??= fetchStation(this.#opts.baseUrl, fetchImpl);
    let station: StationInfo;
    try {
      station = await this.#station;
    } catch (err) {
      this.#station = null;
      throw err;
    }
    if (station.turn === false) {
      // The station says this server has no TURN: STUN only, and no request that would fail.
      this.#turn = { creds: null, until: Number.POSITIVE_INFINITY };
    } else if (!this.#turn || Date.now() >= this.#turn.until) {
      try {
        const creds = await fetchTurnCredentials(this.#opts.baseUrl, this.#opts.token, fetchImpl);
        this.#turn = { creds, until: Date.now() + creds.ttl * 800 };
      } catch (err) {
        if (!(err instanceof ParleyError) || err.code !== 'SERVICE_UNAVAILABLE') throw err;
        this.#turn = { creds: null, until: Date.now() + 60_000 }; // TURN not configured: ask again later
      }
    }
    return iceServersFrom(station.stunUrls, this.#turn.creds);
  }
}
