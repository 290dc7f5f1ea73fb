import {
  ParleyError,
  type Participant,
  type PttChannel,
  type Recording,
  type RevokeReason,
} from '../../../src/client/index.js';
import { clock, h, initials, replace } from '../dom.js';
import type { Shell } from '../shell.js';

const REVOKE_TEXT: Record<RevokeReason, string> = {
  'max-duration': 'Maximum talk time reached: the floor was released',
  preempted: 'A higher-priority speaker took the floor',
  'lock-lost': 'Floor lost (server trouble)',
  'media-closed': 'Floor lost: the media server restarted',
  'connection-lost': 'Floor lost: your connection dropped',
  admin: 'An administrator took the floor back',
};

/** How many recent bursts the list under the talk button shows. */
const BURSTS_SHOWN = 20;

function timeOfDay(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A PTT channel: the talk button (or the space bar), who speaks, and the members (with Call buttons). */
export class PttView {
  readonly #shell: Shell;
  #channel: PttChannel | null = null;
  #statusTimer: ReturnType<typeof setTimeout> | null = null;
  #spaceDown = false;
  /** The channel's recent bursts, newest first, and which were spoken while we were disconnected. */
  #bursts: Recording[] = [];
  readonly #missed = new Set<string>();
  #playing: string | null = null;

  constructor(shell: Shell) {
    this.#shell = shell;
  }

  get channel(): PttChannel | null {
    return this.#channel;
  }

  async join(roomId: string): Promise<void> {
    const client = this.#shell.client;
    if (!client) return;
    replace(this.#shell.view, h('p', { class: 'muted center' }, 'Joining…'));
    let channel: PttChannel;
    try {
      channel = await client.joinPtt(roomId);
    } catch (err) {
      this.#shell.showChannels();
      this.#shell.toast(`Could not join: ${ParleyError.from(err).reason}`);
      return;
    }
    this.#channel = channel;
    this.#shell.handle.channel = channel;
    channel.on('participantsChanged', () => this.renderMembers());
    channel.on('speakerChanged', () => {
      this.renderMembers();
      this.renderSpeaker();
    });
    channel.on('talkStateChanged', () => this.#renderTalkButton());
    channel.on('denied', ({ speaker }) => this.#status(`${speaker.name} is speaking`, 'denied'));
    channel.on('queued', ({ position }) => this.#status(`You are #${position} in the queue`, 'queued', 0));
    channel.on('granted', () => this.#status('', 'granted', 0));
    channel.on('revoked', ({ reason }) => this.#status(REVOKE_TEXT[reason], 'revoked'));
    channel.on('mediaStateChanged', () => this.renderSpeaker());
    channel.on('playbackBlocked', () => this.#showAudioUnlock(true));
    channel.on('error', (err) => this.#shell.toast(err.reason));
    channel.on('recording', (rec, { missed }) => {
      if (this.#channel !== channel) return;
      if (missed) this.#missed.add(rec.id);
      this.#bursts = [rec, ...this.#bursts.filter((b) => b.id !== rec.id)]
        .sort((a, b) => b.startedAt - a.startedAt)
        .slice(0, BURSTS_SHOWN);
      this.renderBursts();
    });
    this.#bursts = [];
    this.#missed.clear();
    // A recorded channel lists its recent bursts; any other answers nothing (or 403): no list.
    channel
      .history({ limit: BURSTS_SHOWN })
      .then((list) => {
        if (this.#channel !== channel) return;
        const known = new Set(this.#bursts.map((b) => b.id));
        this.#bursts = [...this.#bursts, ...list.filter((b) => !known.has(b.id))]
          .sort((a, b) => b.startedAt - a.startedAt)
          .slice(0, BURSTS_SHOWN);
        this.renderBursts();
      })
      .catch(() => undefined);
    channel.on('closed', () => {
      if (this.#channel === channel) {
        this.leaveUi();
        if (this.#shell.client?.signaling.state === 'connected') this.#shell.showChannels();
      }
    });
    this.#render();
  }

  /** Forgets the channel (it was closed or left); the caller shows the next view. */
  leaveUi(): void {
    this.#channel = null;
    this.#shell.handle.channel = null;
  }

  /** Space bar: hold to talk, unless typing in a field. */
  onKey(e: KeyboardEvent, down: boolean): void {
    if (e.code !== 'Space' || !this.#channel) return;
    const target = e.target as HTMLElement | null;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    e.preventDefault(); // no page scroll, no button "click"
    if (down) {
      if (e.repeat || this.#spaceDown) return;
      this.#spaceDown = true;
      this.#press();
    } else {
      this.releaseSpace();
    }
  }

  /** The window lost focus: a held space bar will never come up. */
  releaseSpace(): void {
    if (!this.#spaceDown) return;
    this.#spaceDown = false;
    this.#release();
  }

  /** Every 250 ms: the talk timer. */
  tick(): void {
    if (this.#channel?.speaker) this.renderSpeaker();
  }

  #render(): void {
    const channel = this.#channel;
    if (!channel) return;
    const button = h(
      'button',
      { class: 'ptt', id: 'ptt-button', type: 'button', 'aria-label': 'Hold to talk', 'data-state': 'idle' },
      h('span', { class: 'ptt-label' }, 'Hold to talk'),
    );
    // Pointer events cover mouse, touch and pen; capture keeps the release even if the finger slides off.
    button.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      button.setPointerCapture(e.pointerId);
      this.#press();
    });
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture'] as const) {
      button.addEventListener(type, () => this.#release());
    }
    button.addEventListener('contextmenu', (e) => e.preventDefault()); // long-press menu on phones
    button.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') e.preventDefault(); // Enter would "click"; talking is press-and-hold
    });
    const audioUnlock = h(
      'button',
      {
        class: 'audio-unlock',
        id: 'audio-unlock',
        hidden: true,
        onclick: () => {
          this.#channel?.resumeAudio();
          this.#showAudioUnlock(false);
        },
      },
      'Tap to enable audio',
    );
    replace(
      this.#shell.view,
      h(
        'div',
        { class: 'channel-head' },
        h('h2', { id: 'channel-name' }, channel.config.name),
        h('button', { class: 'link', id: 'leave-channel', onclick: () => void this.#leave() }, '← Channels'),
      ),
      h(
        'div',
        { class: 'channel-grid' },
        h(
          'div',
          { class: 'card talk' },
          h('p', { class: 'speaker', id: 'speaker-banner', 'aria-live': 'polite' }),
          button,
          h('p', { class: 'hint' }, 'Hold the button, or hold the space bar'),
          h('p', { class: 'status', id: 'ptt-status', 'aria-live': 'assertive' }),
          channel.microphoneError
            ? h('p', { class: 'error' }, `Listen-only: ${channel.microphoneError.reason}`)
            : null,
          audioUnlock,
          h(
            'section',
            { class: 'bursts', id: 'bursts', hidden: true, 'aria-label': 'Recent transmissions' },
            h('h3', {}, 'Recent transmissions'),
            h('ul', { id: 'burst-list' }),
          ),
        ),
        h(
          'div',
          { class: 'card members-card' },
          h('h3', {}, 'In this channel ', h('span', { class: 'count', id: 'member-count' })),
          h('ul', { class: 'members', id: 'members' }),
        ),
      ),
    );
    this.renderMembers();
    this.renderSpeaker();
    this.#renderTalkButton();
  }

  #press(): void {
    const channel = this.#channel;
    if (!channel) return;
    channel.resumeAudio(); // a press is a user gesture: unblock playback if it was blocked
    channel.startTalking().catch((err: unknown) => this.#status(ParleyError.from(err).reason, 'revoked'));
  }

  #release(): void {
    this.#channel?.stopTalking().catch(() => undefined);
  }

  async #leave(): Promise<void> {
    const channel = this.#channel;
    this.leaveUi();
    this.#shell.showChannels();
    await channel?.leave().catch(() => undefined);
  }

  /** The burst list under the talk button: who, when, how long, a play button; missed ones marked. */
  renderBursts(): void {
    const section = document.getElementById('bursts');
    const list = document.getElementById('burst-list');
    if (!section || !list) return;
    section.hidden = this.#bursts.length === 0;
    replace(
      list,
      ...this.#bursts.map((b) => {
        const missed = this.#missed.has(b.id);
        const playing = this.#playing === b.id;
        return h(
          'li',
          { class: `burst${missed ? ' missed' : ''}`, 'data-recording': b.id, 'data-missed': String(missed) },
          h('span', { class: 'burst-who' }, b.speaker.name),
          h(
            'time',
            { class: 'burst-when', datetime: new Date(b.startedAt).toISOString() },
            timeOfDay(b.startedAt),
          ),
          h('span', { class: 'burst-len' }, clock(b.durationMs + 500)),
          missed ? h('span', { class: 'badge missed-badge' }, 'missed') : null,
          b.partial ? h('span', { class: 'badge' }, 'cut off') : null,
          h(
            'button',
            {
              class: 'play-btn',
              type: 'button',
              'data-play': b.id,
              disabled: playing,
              'aria-label': `Play ${b.speaker.name} at ${timeOfDay(b.startedAt)}`,
              onclick: () => this.#play(b.id),
            },
            playing ? 'Playing…' : '▶ Play',
          ),
        );
      }),
    );
  }

  #play(id: string): void {
    const channel = this.#channel;
    if (!channel) return;
    this.#playing = id;
    this.#missed.delete(id);
    this.renderBursts();
    channel
      .replay(id)
      .catch((err: unknown) => this.#shell.toast(`Could not play: ${ParleyError.from(err).reason}`))
      .finally(() => {
        if (this.#playing === id) this.#playing = null;
        this.renderBursts();
      });
  }

  renderMembers(): void {
    const channel = this.#channel;
    const list = document.getElementById('members');
    if (!channel || !list) return;
    const me = channel.sessionId;
    const speaking = channel.speaker?.sessionId;
    const rows = channel.participants.map((p) =>
      this.#memberRow(p, p.sessionId === me, p.sessionId === speaking),
    );
    replace(list, ...rows);
    const count = document.getElementById('member-count');
    if (count) count.textContent = `(${channel.participants.length})`;
  }

  #memberRow(p: Participant, isMe: boolean, isSpeaking: boolean): HTMLLIElement {
    const busy = this.#shell.inCall;
    return h(
      'li',
      { class: `member${isSpeaking ? ' speaking' : ''}`, 'data-session': p.sessionId, 'data-user': p.userId },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(p.name)),
      h(
        'span',
        { class: 'name' },
        p.name,
        // A name the client chose (its token carries none): anyone could have typed it.
        p.nameVerified === false
          ? h(
              'span',
              { class: 'muted unverified', title: 'name not verified by the server' },
              ' (unverified)',
            )
          : null,
        isMe ? h('span', { class: 'muted' }, ' (you)') : null,
      ),
      isSpeaking ? h('span', { class: 'bars', 'aria-label': 'speaking' }, h('i'), h('i'), h('i')) : null,
      isMe
        ? null
        : h(
            'button',
            {
              class: 'call-btn',
              'data-call': p.userId,
              disabled: busy,
              'aria-label': `Call ${p.name}`,
              onclick: () => void this.#shell.placeCall(p.userId, p.name),
            },
            'Call',
          ),
    );
  }

  renderSpeaker(): void {
    const el = document.getElementById('speaker-banner');
    const channel = this.#channel;
    if (!el || !channel) return;
    const speaker = channel.speaker;
    el.dataset.speaker = speaker?.userId ?? '';
    el.classList.toggle('live', speaker !== null);
    if (channel.mediaState === 'connecting') {
      el.textContent = 'Connecting audio…';
    } else if (channel.mediaState === 'reconnecting') {
      el.textContent = 'Audio reconnecting…';
    } else if (!speaker) {
      el.textContent = 'Channel is clear';
    } else {
      const talkMs = (this.#shell.client?.signaling.serverNow() ?? Date.now()) - speaker.since;
      const name = speaker.nameVerified === false ? `${speaker.name} (unverified)` : speaker.name;
      const who = speaker.sessionId === channel.sessionId ? 'You are talking' : `${name} is speaking`;
      el.textContent = `${who} · ${clock(talkMs)}`;
    }
  }

  #renderTalkButton(): void {
    const button = document.getElementById('ptt-button');
    const channel = this.#channel;
    if (!button || !channel) return;
    const state = channel.talkState;
    button.dataset.state = state;
    button.setAttribute('aria-pressed', String(state === 'talking'));
    const text = {
      idle: 'Hold to talk',
      requesting: 'Requesting…',
      queued: `Queued #${channel.queuePosition ?? '?'}`,
      talking: 'Talking',
    }[state];
    const label = button.querySelector('.ptt-label');
    if (label) label.textContent = text;
    (button as HTMLButtonElement).disabled = !channel.canTalk;
  }

  #status(text: string, kind: string, clearAfterMs = 3_000): void {
    const el = document.getElementById('ptt-status');
    if (!el) return;
    el.textContent = text;
    el.dataset.kind = kind;
    if (this.#statusTimer) clearTimeout(this.#statusTimer);
    this.#statusTimer = null;
    if (clearAfterMs > 0) {
      this.#statusTimer = setTimeout(() => {
        el.textContent = '';
        el.dataset.kind = '';
      }, clearAfterMs);
    }
  }

  #showAudioUnlock(show: boolean): void {
    const el = document.getElementById('audio-unlock');
    if (el) el.hidden = !show;
  }
}
