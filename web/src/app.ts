import { fetchStation, ParleyClient, ParleyError, type StationInfo } from '../../src/client/index.js';
import { h, replace } from './dom.js';
import { loadIdentity, saveIdentity, tokenSource, type Identity } from './identity.js';
import type { DemoHandle, Shell } from './shell.js';
import { AdminPanel, isAdminToken } from './views/admin.js';
import { CallView } from './views/call.js';
import { ChannelsView } from './views/channels.js';
import { ConferenceView } from './views/conference.js';
import { PttView } from './views/ptt.js';
import { SignInView } from './views/sign-in.js';
import { TopBar } from './views/top-bar.js';

export type { DemoHandle };

/**
 * The demo: sign in by name (a development server mints a token) or with a token → channel list
 * from /api/station → a PTT channel (hold the button or the space bar) or a conference room (video
 * tiles, microphone/camera/screen), and 1:1 calls with anyone online in it. Plain DOM, no framework; all state lives in the SDK objects.
 *
 * The shell: the layout, the connection (sign in and out), the keyboard, the ticker and the toast;
 * one class per view in `views/` renders the rest.
 */
export class App implements Shell {
  readonly #root: HTMLElement;
  #station: StationInfo | null = null;
  #identity: Identity | null = null;
  #client: ParleyClient | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  readonly handle: DemoHandle = { client: null, channel: null, room: null, call: null };

  // Persistent layout
  readonly view = h('section', { class: 'view', id: 'view' });
  readonly callPanel = h('aside', {
    class: 'call-panel',
    id: 'call-panel',
    hidden: true,
    'aria-live': 'assertive',
  });
  readonly #toast = h('div', { class: 'toast', id: 'toast', role: 'status', hidden: true });

  readonly #top = new TopBar(this);
  readonly #signIn = new SignInView(this);
  readonly #channels = new ChannelsView(this);
  readonly #ptt = new PttView(this);
  readonly #conference = new ConferenceView(this);
  readonly #calls = new CallView(this);
  readonly #admin = new AdminPanel(
    () => this.#identity?.token ?? null,
    (text) => this.toast(text),
  );

  constructor(root: HTMLElement) {
    this.#root = root;
  }

  get station(): StationInfo | null {
    return this.#station;
  }

  get client(): ParleyClient | null {
    return this.#client;
  }

  /** The signed-in token carries `admin: true`: the top bar offers the Admin panel. */
  get isAdmin(): boolean {
    return this.#client !== null && this.#identity !== null && isAdminToken(this.#identity.token);
  }

  toggleAdmin(): boolean {
    return this.#admin.toggle();
  }

  get inCall(): boolean {
    return this.#calls.call !== null;
  }

  async start(): Promise<void> {
    replace(this.#root, this.#top.el, this.view, this.callPanel, this.#admin.el, this.#toast);
    this.#top.render();
    document.addEventListener('keydown', (e) => this.#ptt.onKey(e, true));
    document.addEventListener('keyup', (e) => this.#ptt.onKey(e, false));
    window.addEventListener('blur', () => this.#ptt.releaseSpace());
    this.#ticker = setInterval(() => this.#tick(), 250);
    try {
      this.#station = await fetchStation(location.origin);
      document.title = `${this.#station.name} · Parley`;
    } catch (err) {
      this.toast(`Cannot reach the server: ${ParleyError.from(err).reason}`);
    }
    this.#top.render();
    const saved = loadIdentity();
    if (saved) await this.connect(saved);
    else this.#signIn.render();
  }

  async connect(identity: Identity): Promise<void> {
    this.#identity = identity;
    replace(this.view, h('p', { class: 'muted center' }, 'Connecting…'));
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
    s.on('connectionStateChanged', () => this.#top.render());
    s.on('reconnecting', ({ attempt }) => this.#top.render(attempt));
    s.on('reconnected', ({ resumed }) => {
      this.#top.render();
      if (!resumed) this.toast('Reconnected (new session: rooms re-joined)');
    });
    s.on('disconnected', (reason) => {
      this.#top.render();
      if (reason.code === 'REMOVED') {
        saveIdentity(null);
        this.#ptt.leaveUi();
        this.#signIn.render(
          'An administrator removed you. Sign in again to continue.',
          identity.mode === 'token',
        );
        return;
      }
      if (reason.code === 'UNAUTHORIZED') {
        saveIdentity(null);
        this.#ptt.leaveUi();
        this.#conference.leaveUi();
        this.#signIn.render(
          'Your token was refused or has expired. Sign in again.',
          identity.mode === 'token',
        );
      }
    });
    client.calls.on('incoming', (call) => this.#calls.show(call));
    try {
      const welcome = await s.connect();
      this.#identity = { ...(this.#identity ?? identity), name: welcome.name };
      saveIdentity(this.#identity);
      this.#top.render();
      this.#channels.render();
    } catch (err) {
      client.close();
      this.#client = null;
      this.handle.client = null;
      saveIdentity(null);
      this.#top.render();
      this.#signIn.render(`Could not connect: ${ParleyError.from(err).reason}`, identity.mode === 'token');
    }
  }

  signOut(): void {
    this.#calls.call?.hangup();
    this.#ptt.leaveUi();
    this.#conference.leaveUi();
    this.#client?.close();
    this.#client = null;
    this.handle.client = null;
    this.#identity = null;
    saveIdentity(null);
    this.#admin.hide();
    this.#top.render();
    this.#signIn.render();
  }

  showChannels(): void {
    this.#channels.render();
  }

  joinChannel(roomId: string): Promise<void> {
    return this.#ptt.join(roomId);
  }

  joinConference(roomId: string): Promise<void> {
    return this.#conference.join(roomId);
  }

  placeCall(userId: string, name: string): Promise<void> {
    return this.#calls.place(userId, name);
  }

  callChanged(): void {
    this.#ptt.renderMembers();
    this.#conference.renderTiles();
  }

  toast(text: string): void {
    const el = this.#toast;
    el.textContent = text;
    el.hidden = false;
    setTimeout(() => {
      if (el.textContent === text) el.hidden = true;
    }, 4_000);
  }

  #tick(): void {
    this.#ptt.tick();
    this.#calls.tick();
  }

  dispose(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#client?.close();
  }
}
