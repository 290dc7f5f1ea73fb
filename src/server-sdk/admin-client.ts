import {
  ADMIN_API,
  type AdminEndpoint,
  type AdminOperation,
  type AdminRequest,
  type AdminResponse,
  type ErrorBody,
} from '../protocol/index.js';

/** A refusal from the server API: the catalogue's code (docs/errors.md) and the HTTP status. */
export class ParleyAdminError extends Error {
  override name = 'ParleyAdminError';
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, body: Partial<ErrorBody> | undefined) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'INTERNAL';
    this.details = body?.details;
  }
}

export interface ParleyAdminOptions {
  /** Where the server listens, e.g. `https://parley.example.org`. */
  baseUrl: string;
  /** ADMIN_API_KEY, or a JWT with `admin: true`. */
  credential: string;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

/**
 * A typed Node client of the server API (docs/server-api.md). Every method is one endpoint of
 * ADMIN_API; `call(op, request)` reaches any of them by name. Failures throw ParleyAdminError.
 */
export class ParleyAdmin {
  readonly #base: string;
  readonly #credential: string;
  readonly #fetch: typeof fetch;

  constructor(options: ParleyAdminOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#credential = options.credential;
    this.#fetch = options.fetch ?? fetch;
  }

  listRooms = () => this.call('listRooms', {});
  getRoom = (r: AdminRequest<'getRoom'>) => this.call('getRoom', r);
  endRoom = (r: AdminRequest<'endRoom'>) => this.call('endRoom', r);
  removeParticipant = (r: AdminRequest<'removeParticipant'>) => this.call('removeParticipant', r);
  muteParticipant = (r: AdminRequest<'muteParticipant'>) => this.call('muteParticipant', r);
  revokeFloor = (r: AdminRequest<'revokeFloor'>) => this.call('revokeFloor', r);
  sendRoomMessage = (r: AdminRequest<'sendRoomMessage'>) => this.call('sendRoomMessage', r);
  sendUserMessage = (r: AdminRequest<'sendUserMessage'>) => this.call('sendUserMessage', r);
  mintToken = (r: AdminRequest<'mintToken'>) => this.call('mintToken', r);
  listCalls = () => this.call('listCalls', {});

  async call<K extends AdminOperation>(op: K, request: AdminRequest<K>): Promise<AdminResponse<K>> {
    const ep: AdminEndpoint = ADMIN_API[op];
    const fields = request as Record<string, unknown>;
    const path = ep.path.replace(/\{(\w+)\}/g, (_m, name: string) =>
      encodeURIComponent(String(fields[name])),
    );
    const res = await this.#fetch(`${this.#base}${path}`, {
      method: ep.method,
      headers: {
        authorization: `Bearer ${this.#credential}`,
        ...(ep.body ? { 'content-type': 'application/json' } : {}),
      },
      ...(ep.body ? { body: JSON.stringify(fields.body) } : {}),
    });
    const json: unknown = await res.json().catch(() => undefined);
    if (!res.ok) throw new ParleyAdminError(res.status, (json as { error?: ErrorBody } | undefined)?.error);
    return json as AdminResponse<K>;
  }
}
