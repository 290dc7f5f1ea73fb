import type { AdminParticipant, AdminRoom } from '../../../src/protocol/admin.js';
import { h, replace } from '../dom.js';

/** The `admin` claim of a JWT (read without verifying: the server decides; this only shows a panel). */
export function isAdminToken(token: string): boolean {
  const part = token.split('.')[1];
  if (!part) return false;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '='))) as { admin?: unknown };
    return json.admin === true;
  } catch {
    return false;
  }
}

/**
 * The Admin panel, for admin tokens only: rooms with their members (from the server API, on every
 * node), and Remove and Mute buttons per member. It calls /api/admin/ with the signed-in token.
 */
export class AdminPanel {
  readonly el = h('aside', { class: 'admin-panel', id: 'admin-panel', hidden: true });
  readonly #token: () => string | null;
  readonly #toast: (text: string) => void;

  constructor(token: () => string | null, toast: (text: string) => void) {
    this.#token = token;
    this.#toast = toast;
  }

  /** Shows or hides the panel; returns whether it is shown. */
  toggle(): boolean {
    this.el.hidden = !this.el.hidden;
    if (!this.el.hidden) void this.refresh();
    return !this.el.hidden;
  }

  hide(): void {
    this.el.hidden = true;
  }

  async refresh(): Promise<void> {
    try {
      const { rooms } = await this.#api<{ rooms: AdminRoom[] }>('GET', '/api/admin/rooms');
      const details = await Promise.all(
        rooms.map((r) =>
          this.#api<{ participants: AdminParticipant[] }>(
            'GET',
            `/api/admin/rooms/${encodeURIComponent(r.roomId)}`,
          ),
        ),
      );
      replace(
        this.el,
        h(
          'div',
          { class: 'admin-head' },
          h('h2', {}, 'Admin'),
          h('button', { class: 'link', id: 'admin-refresh', onclick: () => void this.refresh() }, 'Refresh'),
        ),
        rooms.length === 0 ? h('p', { class: 'muted' }, 'No room has members.') : null,
        ...rooms.map((room, i) => this.#room(room, details[i]?.participants ?? [])),
      );
    } catch (err) {
      replace(this.el, h('h2', {}, 'Admin'), h('p', { class: 'muted' }, (err as Error).message));
    }
  }

  #room(room: AdminRoom, participants: AdminParticipant[]): HTMLElement {
    const speaker = room.speaker ? ` · ${room.speaker.name} speaking` : '';
    return h(
      'section',
      { class: 'admin-room', 'data-room': room.roomId },
      h('h3', {}, `${room.name} (${room.mode}, ${room.members})${speaker}`),
      h(
        'ul',
        {},
        ...participants.map((p) =>
          h(
            'li',
            { 'data-user': p.userId },
            h('span', {}, `${p.name}${p.muted ? ' (muted)' : ''}`),
            room.mode === 'conference' && p.producers.length > 0
              ? h(
                  'button',
                  {
                    class: 'admin-mute',
                    onclick: () =>
                      void this.#act(p.muted ? 'Unmuted' : 'Muted', 'POST', room, p, '/mute', {
                        muted: !p.muted,
                      }),
                  },
                  p.muted ? 'Unmute' : 'Mute',
                )
              : null,
            h(
              'button',
              {
                class: 'admin-remove danger',
                onclick: () => void this.#act('Removed', 'DELETE', room, p, ''),
              },
              'Remove',
            ),
          ),
        ),
      ),
    );
  }

  async #act(
    done: string,
    method: string,
    room: AdminRoom,
    p: AdminParticipant,
    suffix: string,
    body?: unknown,
  ): Promise<void> {
    const path = `/api/admin/rooms/${encodeURIComponent(room.roomId)}/participants/${encodeURIComponent(p.userId)}${suffix}`;
    try {
      await this.#api(method, path, body);
      this.#toast(`${done} ${p.name}`);
    } catch (err) {
      this.#toast((err as Error).message);
    }
    await this.refresh();
  }

  async #api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = this.#token();
    const res = await fetch(path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as T & { error?: { message: string } };
    if (!res.ok) throw new Error(json.error?.message ?? `HTTP ${res.status}`);
    return json;
  }
}
