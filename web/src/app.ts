import {
  fetchStation,
  ParleyClient,
  ParleyError,
  type Call,
  type CallEndReason,
  type ConnectionState,
  type Participant,
  type PttChannel,
  type RevokeReason,
  type StationInfo,
} from '../../src/client/index.js';
import { clock, h, initials, replace } from './dom.js';
import { loadIdentity, mintDevToken, saveIdentity, tokenSource, type Identity } from './identity.js';

const END_TEXT: Record<CallEndReason, string> = {
  hangup: 'Call ended',
  'remote-hangup': 'The other side hung up',
  rejected: 'Call declined',
  busy: 'Busy: they are in another call',
  'no-answer': 'No answer',
  cancelled: 'Missed call',
  offline: 'They are offline',
  disconnected: 'Call dropped: connection lost',
  failed: 'Call failed: no media connection',
};

const REVOKE_TEXT: Record<RevokeReason, string> = {
  'max-duration': 'Maximum talk time reached: the floor was released',
  preempted: 'A higher-priority speaker took the floor',
  'lock-lost': 'Floor lost (server trouble)',
  'media-closed': 'Floor lost: the media server restarted',
  'connection-lost': 'Floor lost: your connection dropped',
};

/** What the demo exposes on `window.parleyDemo` for the console (and the end-to-end tests). */
export interface DemoHandle {
  client: ParleyClient | null;
  channel: PttChannel | null;
  call: Call | null;
}

/**
 * The demo: sign in by name (a development server mints a token) or with a token → channel list
 * from /api/station → a PTT channel (hold the button or the space bar) and 1:1 calls with anyone
 * online in it. Plain DOM, no framework; all state lives in the SDK objects.
 */
export class App {
  readonly #root: HTMLElement;
  #station: StationInfo | null = null;
  #identity: Identity | null = null;
  #client: ParleyClient | null = null;
  #channel: PttChannel | null = null;
  #call: Call | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #statusTimer: ReturnType<typeof setTimeout> | null = null;
  #spaceDown = false;
  readonly handle: DemoHandle = { client: null, channel: null, call: null };

  // Persistent layout
  readonly #top = h('header', { class: 'topbar' });
  readonly #view = h('section', { class: 'view', id: 'view' });
  readonly #callPanel = h('aside', {
    class: 'call-panel',
    id: 'call-panel',
    hidden: true,
    'aria-live': 'assertive',
  });
  readonly #toast = h('div', { class: 'toast', id: 'toast', role: 'status', hidden: true });

  constructor(root: HTMLElement) {
    this.#root = root;
  }

  async start(): Promise<void> {
    replace(this.#root, this.#top, this.#view, this.#callPanel, this.#toast);
    this.#renderTop();
    document.addEventListener('keydown', (e) => this.#onKey(e, true));
    document.addEventListener('keyup', (e) => this.#onKey(e, false));
    window.addEventListener('blur', () => this.#releaseSpace());
    this.#ticker = setInterval(() => this.#tick(), 250);
    try {
      this.#station = await fetchStation(location.origin);
      document.title = `${this.#station.name} · Parley`;
    } catch (err) {
      this.#toastText(`Cannot reach the server: ${ParleyError.from(err).reason}`);
    }
    this.#renderTop();
    const saved = loadIdentity();
    if (saved) await this.#connect(saved);
    else this.#renderSignIn();
  }

  // ---- sign in -----------------------------------------------------------------------------------------

  #renderSignIn(message?: string, askToken = false): void {
    const error = h('p', { class: 'error', id: 'signin-error', role: 'alert' }, message ?? '');
    error.hidden = !message;
    const name = h('input', {
      id: 'signin-name',
      name: 'name',
      autocomplete: 'nickname',
      maxlength: 64,
      required: true,
      placeholder: 'e.g. Alice',
      autofocus: true,
    });
    const token = h('textarea', {
      id: 'signin-token',
      rows: 3,
      placeholder: 'eyJhbGciOi…',
      spellcheck: 'false',
    });
    const tokenBox = h(
      'details',
      { class: 'token-box', open: askToken },
      h('summary', {}, 'I have a token'),
      h(
        'form',
        {
          onsubmit: (e: Event) => {
            e.preventDefault();
            const value = token.value.trim();
            if (!value) return;
            void this.#connect({ mode: 'token', name: '', token: value });
          },
        },
        h('label', { for: 'signin-token' }, 'Token (a JWT from your backend)'),
        token,
        h('button', { id: 'signin-token-submit', type: 'submit' }, 'Connect with token'),
      ),
    );
    const form = h(
      'form',
      {
        class: 'signin-form',
        onsubmit: (e: Event) => {
          e.preventDefault();
          void this.#signInByName(name.value.trim(), error, tokenBox);
        },
      },
      h('label', { for: 'signin-name' }, 'Your name'),
      h(
        'div',
        { class: 'row' },
        name,
        h('button', { id: 'signin-submit', type: 'submit', class: 'primary' }, 'Continue'),
      ),
    );
    replace(
      this.#view,
      h(
        'div',
        { class: 'card signin' },
        h('h1', {}, this.#station?.name ?? 'Parley'),
        h('p', { class: 'muted' }, 'Push-to-talk channels and 1:1 calls, in the browser.'),
        form,
        error,
        tokenBox,
      ),
    );
    name.focus();
  }

  async #signInByName(name: string, error: HTMLElement, tokenBox: HTMLDetailsElement): Promise<void> {
    if (!name) return;
    try {
      const id = await mintDevToken(name);
      if (!id) {
        error.hidden = false;
        error.textContent =
          'This server does not hand out demo tokens (production mode). Paste a token from your backend below.';
        tokenBox.open = true;
        return;
      }
      await this.#connect(id);
    } catch (err) {
      error.hidden = false;
      error.textContent = ParleyError.from(err).reason;
    }
  }

  async #connect(identity: Identity): Promise<void> {
    this.#identity = identity;
    replace(this.#view, h('p', { class: 'muted center' }, 'Connecting…'));
    const client = new ParleyClient({
      url: location.origin,
      token: tokenSource(
        () => this.#identity ?? identity,
        (fresh) => {
          this.#identity = fresh;
          saveIdentity(fresh);
        },
      ),
    });
    this.#client = client;
    this.handle.client = client;
    const s = client.signaling;
    s.on('connectionStateChanged', () => this.#renderTop());
    s.on('reconnecting', ({ attempt }) => this.#renderTop(attempt));
    s.on('reconnected', ({ resumed }) => {
      this.#renderTop();
      if (!resumed) this.#toastText('Reconnected (new session: rooms re-joined)');
    });
    s.on('disconnected', (reason) => {
      this.#renderTop();
      if (reason.code === 'UNAUTHORIZED') {
        saveIdentity(null);
        this.#leaveChannelUi();
        this.#renderSignIn(
          'Your token was refused or has expired. Sign in again.',
          identity.mode === 'token',
        );
      }
    });
    client.calls.on('incoming', (call) => this.#onCall(call));
    try {
      const welcome = await s.connect();
      this.#identity = { ...(this.#identity ?? identity), name: welcome.name };
      saveIdentity(this.#identity);
      this.#renderTop();
      this.#renderChannels();
    } catch (err) {
      client.close();
      this.#client = null;
      this.handle.client = null;
      saveIdentity(null);
      this.#renderTop();
      this.#renderSignIn(`Could not connect: ${ParleyError.from(err).reason}`, identity.mode === 'token');
    }
  }

  #signOut(): void {
    this.#call?.hangup();
    this.#leaveChannelUi();
    this.#client?.close();
    this.#client = null;
    this.handle.client = null;
    this.#identity = null;
    saveIdentity(null);
    this.#renderTop();
    this.#renderSignIn();
  }

  // ---- top bar: station, me, connection state ------------------------------------------------------------

  #renderTop(attempt?: number): void {
    const state: ConnectionState | 'offline' = this.#client?.signaling.state ?? 'offline';
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
      state === 'disconnected' && this.#client
        ? h('button', { class: 'link', onclick: () => this.#client?.signaling.reconnect() }, 'Retry')
        : null;
    const me = this.#client?.signaling.name;
    replace(
      this.#top,
      h(
        'div',
        { class: 'brand' },
        h('span', { class: 'logo', 'aria-hidden': 'true' }, '◉'),
        this.#station?.name ?? 'Parley',
      ),
      h(
        'div',
        { class: 'who' },
        pill,
        retry,
        me ? h('span', { class: 'me', id: 'me' }, me) : null,
        this.#client
          ? h('button', { class: 'link', id: 'sign-out', onclick: () => this.#signOut() }, 'Sign out')
          : null,
      ),
    );
  }

  // ---- channel list ----------------------------------------------------------------------------------

  #renderChannels(): void {
    const channels = this.#station?.channels ?? [];
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
          ptt
            ? h(
                'button',
                { class: 'primary', id: `join-${c.id}`, onclick: () => void this.#join(c.id) },
                'Join',
              )
            : h('span', { class: 'muted small' }, 'open-mic rooms: via the SDK'),
        ),
      );
    }
    replace(
      this.#view,
      h('h2', {}, 'Channels'),
      channels.length ? list : h('p', { class: 'muted' }, 'This station has no channels.'),
    );
  }

  // ---- PTT channel ---------------------------------------------------------------------------------------

  async #join(roomId: string): Promise<void> {
    const client = this.#client;
    if (!client) return;
    replace(this.#view, h('p', { class: 'muted center' }, 'Joining…'));
    let channel: PttChannel;
    try {
      channel = await client.joinPtt(roomId);
    } catch (err) {
      this.#renderChannels();
      this.#toastText(`Could not join: ${ParleyError.from(err).reason}`);
      return;
    }
    this.#channel = channel;
    this.handle.channel = channel;
    channel.on('participantsChanged', () => this.#renderMembers());
    channel.on('speakerChanged', () => {
      this.#renderMembers();
      this.#renderSpeaker();
    });
    channel.on('talkStateChanged', () => this.#renderTalkButton());
    channel.on('denied', ({ speaker }) => this.#status(`${speaker.name} is speaking`, 'denied'));
    channel.on('queued', ({ position }) => this.#status(`You are #${position} in the queue`, 'queued', 0));
    channel.on('granted', () => this.#status('', 'granted', 0));
    channel.on('revoked', ({ reason }) => this.#status(REVOKE_TEXT[reason], 'revoked'));
    channel.on('mediaStateChanged', () => this.#renderSpeaker());
    channel.on('playbackBlocked', () => this.#showAudioUnlock(true));
    channel.on('error', (err) => this.#toastText(err.reason));
    channel.on('closed', () => {
      if (this.#channel === channel) {
        this.#leaveChannelUi();
        if (this.#client?.signaling.state === 'connected') this.#renderChannels();
      }
    });
    this.#renderChannel();
  }

  #renderChannel(): void {
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
      this.#view,
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
        ),
        h(
          'div',
          { class: 'card members-card' },
          h('h3', {}, 'In this channel ', h('span', { class: 'count', id: 'member-count' })),
          h('ul', { class: 'members', id: 'members' }),
        ),
      ),
    );
    this.#renderMembers();
    this.#renderSpeaker();
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

  #onKey(e: KeyboardEvent, down: boolean): void {
    if (e.code !== 'Space' || !this.#channel) return;
    const target = e.target as HTMLElement | null;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    e.preventDefault(); // no page scroll, no button "click"
    if (down) {
      if (e.repeat || this.#spaceDown) return;
      this.#spaceDown = true;
      this.#press();
    } else {
      this.#releaseSpace();
    }
  }

  #releaseSpace(): void {
    if (!this.#spaceDown) return;
    this.#spaceDown = false;
    this.#release();
  }

  async #leave(): Promise<void> {
    const channel = this.#channel;
    this.#leaveChannelUi();
    this.#renderChannels();
    await channel?.leave().catch(() => undefined);
  }

  #leaveChannelUi(): void {
    this.#channel = null;
    this.handle.channel = null;
  }

  #renderMembers(): void {
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
    const busy = this.#call !== null;
    return h(
      'li',
      { class: `member${isSpeaking ? ' speaking' : ''}`, 'data-session': p.sessionId, 'data-user': p.userId },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(p.name)),
      h('span', { class: 'name' }, p.name, isMe ? h('span', { class: 'muted' }, ' (you)') : null),
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
              onclick: () => void this.#placeCall(p.userId, p.name),
            },
            'Call',
          ),
    );
  }

  #renderSpeaker(): void {
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
      const talkMs = (this.#client?.signaling.serverNow() ?? Date.now()) - speaker.since;
      const who = speaker.sessionId === channel.sessionId ? 'You are talking' : `${speaker.name} is speaking`;
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

  #tick(): void {
    if (this.#channel?.speaker) this.#renderSpeaker();
    if (this.#call?.state === 'active') this.#renderCall();
  }

  // ---- 1:1 calls ----------------------------------------------------------------------------------------

  async #placeCall(userId: string, name: string): Promise<void> {
    const client = this.#client;
    if (!client || this.#call) return;
    try {
      const call = await client.calls.call(userId, { name });
      this.#onCall(call);
    } catch (err) {
      this.#toastText(`Call failed: ${ParleyError.from(err).reason}`);
    }
  }

  #onCall(call: Call): void {
    if (this.#call && this.#call !== call) return; // the SDK already answered "busy"
    this.#call = call;
    this.handle.call = call;
    const audio = h('audio', { autoplay: true, id: 'call-audio' });
    audio.srcObject = call.remoteStream;
    call.on('stateChanged', () => this.#renderCall());
    call.on('muted', () => this.#renderCall());
    call.on('remoteTrack', () => void audio.play().catch(() => undefined));
    call.on('ended', ({ reason }) => {
      this.#toastText(END_TEXT[reason]);
      audio.srcObject = null;
      audio.remove();
      if (this.#call === call) {
        this.#call = null;
        this.handle.call = null;
      }
      this.#renderCall();
      this.#renderMembers();
    });
    document.body.append(audio);
    this.#renderCall();
    this.#renderMembers();
  }

  #renderCall(): void {
    const call = this.#call;
    const panel = this.#callPanel;
    if (!call || call.state === 'ended') {
      panel.hidden = true;
      panel.dataset.state = 'none';
      replace(panel);
      return;
    }
    panel.hidden = false;
    panel.dataset.state = call.state;
    panel.dataset.direction = call.direction;
    const name = call.peer.name;
    let title: string;
    let actions: HTMLElement[];
    const hangup = h(
      'button',
      { class: 'danger', id: 'call-hangup', onclick: () => call.hangup() },
      'Hang up',
    );
    if (call.state === 'ringing' && call.direction === 'incoming') {
      title = `${name} is calling…`;
      actions = [
        h(
          'button',
          {
            class: 'success',
            id: 'call-accept',
            onclick: () =>
              void call.accept().catch((e: unknown) => this.#toastText(ParleyError.from(e).reason)),
          },
          'Accept',
        ),
        h('button', { class: 'danger', id: 'call-reject', onclick: () => call.reject() }, 'Decline'),
      ];
    } else if (call.state === 'ringing') {
      title = `Calling ${name}…`;
      actions = [h('button', { class: 'danger', id: 'call-cancel', onclick: () => call.hangup() }, 'Cancel')];
    } else if (call.state === 'connecting') {
      title = `Connecting to ${name}…`;
      actions = [hangup];
    } else {
      title = `In call with ${name} · ${clock(Date.now() - (call.startedAt ?? Date.now()))}`;
      actions = [
        h(
          'button',
          { id: 'call-mute', 'aria-pressed': String(call.muted), onclick: () => call.setMuted(!call.muted) },
          call.muted ? 'Unmute' : 'Mute',
        ),
        hangup,
      ];
    }
    replace(
      panel,
      h('span', { class: 'avatar big', 'aria-hidden': 'true' }, initials(name)),
      h('p', { class: 'call-title', id: 'call-title' }, title),
      call.muted ? h('p', { class: 'muted small', id: 'call-muted' }, 'You are muted') : null,
      h('div', { class: 'call-actions' }, ...actions),
    );
  }

  #toastText(text: string): void {
    const el = this.#toast;
    el.textContent = text;
    el.hidden = false;
    setTimeout(() => {
      if (el.textContent === text) el.hidden = true;
    }, 4_000);
  }

  dispose(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#client?.close();
  }
}
