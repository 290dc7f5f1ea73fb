import { h, replace } from '../dom.js';
import type { Shell } from '../shell.js';

/** The station's channels from /api/station: PTT channels and conference rooms, each with a Join button. */
export class ChannelsView {
  readonly #shell: Shell;

  constructor(shell: Shell) {
    this.#shell = shell;
  }

  render(): void {
    const channels = this.#shell.station?.channels ?? [];
    const list = h('ul', { class: 'channels', id: 'channels' });
    for (const c of channels) {
      const ptt = c.mode === 'ptt';
      list.append(
        h(
          'li',
          { class: 'card channel', 'data-room': c.id },
          h(
            'div',
            {},
            h('h3', {}, c.name),
            h('span', { class: `badge ${c.mode}` }, ptt ? 'Push-to-talk' : 'Conference'),
            h('span', { class: 'muted' }, ` up to ${c.maxParticipants}`),
          ),
          h(
            'button',
            {
              class: 'primary',
              id: `join-${c.id}`,
              onclick: () => void (ptt ? this.#shell.joinChannel(c.id) : this.#shell.joinConference(c.id)),
            },
            'Join',
          ),
        ),
      );
    }
    replace(
      this.#shell.view,
      h('h2', {}, 'Channels'),
      channels.length ? list : h('p', { class: 'muted' }, 'This station has no channels.'),
    );
  }
}
