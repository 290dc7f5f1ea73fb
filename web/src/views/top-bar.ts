import type { ConnectionState } from '../../../src/client/index.js';
import { h, replace } from '../dom.js';
import type { Shell } from '../shell.js';

/** The top bar: station, who I am, and the connection state (with Retry once it gave up). */
export class TopBar {
  readonly el = h('header', { class: 'topbar' });
  readonly #shell: Shell;

  constructor(shell: Shell) {
    this.#shell = shell;
  }

  render(attempt?: number): void {
    const client = this.#shell.client;
    const state: ConnectionState | 'offline' = client?.signaling.state ?? 'offline';
    const label: Record<ConnectionState | 'offline', string> = {
      offline: 'Not connected',
      idle: 'Not connected',
      connecting: 'Connecting…',
      connected: 'Connected',
      reconnecting: attempt && attempt > 1 ? `Reconnecting… (attempt ${attempt})` : 'Reconnecting…',
      disconnected: 'Disconnected',
    };
    const pill = h(
      'span',
      { class: `pill state-${state}`, id: 'conn-state', 'data-state': state },
      label[state],
    );
    const retry =
      state === 'disconnected' && client
        ? h('button', { class: 'link', onclick: () => this.#shell.client?.signaling.reconnect() }, 'Retry')
        : null;
    const me = client?.signaling.name;
    replace(
      this.el,
      h(
        'div',
        { class: 'brand' },
        h('span', { class: 'logo', 'aria-hidden': 'true' }, '◉'),
        this.#shell.station?.name ?? 'Parley',
      ),
      h(
        'div',
        { class: 'who' },
        pill,
        retry,
        me ? h('span', { class: 'me', id: 'me' }, me) : null,
        this.#shell.isAdmin
          ? h(
              'button',
              {
                class: 'link',
                id: 'admin-toggle',
                'aria-pressed': 'false',
                onclick: (e: Event) => {
                  const shown = this.#shell.toggleAdmin();
                  (e.currentTarget as HTMLElement).setAttribute('aria-pressed', String(shown));
                },
              },
              'Admin',
            )
          : null,
        client
          ? h('button', { class: 'link', id: 'sign-out', onclick: () => this.#shell.signOut() }, 'Sign out')
          : null,
      ),
    );
  }
}
