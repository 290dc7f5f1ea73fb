import { ParleyError } from './errors.js';

export interface FailedOpen {
  /** The signaling endpoint that was tried. */
  wsUrl: string;
  /** The HTTP base of the same server. */
  httpBase: string;
  /** Whether the token went on the upgrade (`auth: 'subprotocol'`) or was to follow in-band. */
  tokenOnUpgrade: boolean;
  /** What the WebSocket implementation said, if anything (Node's `ws` names the HTTP status). */
  errorText?: string | undefined;
  fetch?: typeof fetch | undefined;
  /** Bound on each HTTP probe. */
  probeTimeoutMs: number;
}

/**
 * Names why a WebSocket never opened. Node's `ws` says it ("Unexpected server response: 404",
 * "ECONNREFUSED"); a browser only reports a close 1006, so the server is asked over HTTP:
 *
 * 1. `GET` the endpoint itself (CORS): a Parley server answers 426 Upgrade Required there, so the
 *    endpoint exists and the upgrade was refused for another reason;
 * 2. otherwise any answer from the origin (no-cors) means the server is up but the path is wrong;
 * 3. no answer at all: unreachable.
 *
 * With in-band authentication (the default) a refused token never prevents the open: it arrives
 * as close 4401 after it, so it is not among these causes.
 */
export async function diagnoseFailedOpen(f: FailedOpen): Promise<ParleyError> {
  const tried = [f.wsUrl];
  const details = (extra: Record<string, unknown> = {}) => ({ url: f.wsUrl, tried, ...extra });
  const status = f.errorText ? /Unexpected server response: (\d{3})/.exec(f.errorText)?.[1] : undefined;
  if (status) return fromStatus(Number(status), f, details({ status: Number(status) }));
  if (f.errorText) {
    return new ParleyError('CONNECTION_FAILED', `could not reach ${f.wsUrl} (${f.errorText})`, {
      details: details(),
    });
  }

  const fetchImpl: typeof fetch | undefined = f.fetch ?? globalThis.fetch;
  if (!fetchImpl) {
    return new ParleyError('CONNECTION_FAILED', `could not open ${f.wsUrl}`, { details: details() });
  }
  const endpoint = f.wsUrl.replace(/^ws/, 'http');
  tried.push(`GET ${endpoint}`);
  try {
    const res = await fetchImpl(endpoint, {
      cache: 'no-store',
      signal: AbortSignal.timeout(f.probeTimeoutMs),
    });
    return fromStatus(res.status, f, details({ status: res.status }));
  } catch {
    // CORS-less answer (not a Parley endpoint), or nothing answered: ask the origin.
  }
  const origin = new URL(f.httpBase).origin;
  tried.push(`GET ${origin}/`);
  try {
    await fetchImpl(`${origin}/`, {
      mode: 'no-cors',
      cache: 'no-store',
      signal: AbortSignal.timeout(f.probeTimeoutMs),
    });
  } catch {
    return new ParleyError(
      'CONNECTION_FAILED',
      `could not reach ${origin}: nothing answered (is the server running, and is the URL's host and port right?)`,
      { details: details() },
    );
  }
  return wrongPath(f, details());
}

function fromStatus(status: number, f: FailedOpen, details: Record<string, unknown>): ParleyError {
  switch (status) {
    case 426:
      return new ParleyError(
        'CONNECTION_FAILED',
        `${f.wsUrl} is a Parley endpoint, but it refused the WebSocket upgrade (too many connections from this address, the server draining, or IN_BAND_AUTH=false without a token on the upgrade)`,
        { details },
      );
    case 401:
      return f.tokenOnUpgrade
        ? new ParleyError('UNAUTHORIZED', 'the server refused the token (HTTP 401)', { details })
        : new ParleyError(
            'UNAUTHORIZED',
            "the server wants the token on the upgrade (IN_BAND_AUTH=false): pass auth: 'subprotocol'",
            { details },
          );
    case 429:
      return new ParleyError('TOO_MANY_CONNECTIONS', undefined, { details });
    case 503:
      return new ParleyError('SERVICE_UNAVAILABLE', 'the server is draining or not ready', { details });
    default:
      return status >= 400 && status < 500 ? wrongPath(f, details) : serverAnswered(status, f, details);
  }
}

function wrongPath(f: FailedOpen, details: Record<string, unknown>): ParleyError {
  return new ParleyError(
    'NOT_FOUND',
    `the server answered, but ${new URL(f.wsUrl).pathname} is not its signaling endpoint: pass the server's origin (e.g. ${new URL(f.httpBase).origin}) or its /ws URL`,
    { details },
  );
}

function serverAnswered(status: number, f: FailedOpen, details: Record<string, unknown>): ParleyError {
  return new ParleyError('CONNECTION_FAILED', `${f.wsUrl} answered HTTP ${status} instead of a WebSocket`, {
    details,
  });
}
