import {
  ParleyError,
  type ConferenceParticipant,
  type ConferenceRoom,
  type TrackSource,
} from '../../../src/client/index.js';
import { h, initials, replace } from '../dom.js';
import type { Shell } from '../shell.js';

/** One tile per video (camera or screen) or, for a member with no video, per member. */
interface Tile {
  key: string;
  el: HTMLElement;
  video: HTMLVideoElement | null;
  /** Tells the room the tile's size, so a small tile gets a low simulcast layer. */
  resize: ResizeObserver | null;
  /** Tells the room whether the tile is on screen, so a hidden tile's consumer is paused. */
  visible: IntersectionObserver | null;
}

/**
 * A conference room: a responsive grid of tiles (videos, or initials for members without one) with
 * names, a muted mark and the active speaker highlighted, and the controls for microphone, camera,
 * screen and leaving (`#toggle-mic`, `#toggle-camera`, `#toggle-screen`, `#leave-room`).
 */
export class ConferenceView {
  readonly #shell: Shell;
  #room: ConferenceRoom | null = null;
  readonly #tiles = new Map<string, Tile>();
  #grid: HTMLElement | null = null;

  constructor(shell: Shell) {
    this.#shell = shell;
  }

  get room(): ConferenceRoom | null {
    return this.#room;
  }

  async join(roomId: string): Promise<void> {
    const client = this.#shell.client;
    if (!client) return;
    replace(this.#shell.view, h('p', { class: 'muted center' }, 'Joining…'));
    let room: ConferenceRoom;
    try {
      room = await client.joinConference(roomId, { microphone: true, camera: false });
    } catch (err) {
      this.#shell.showChannels();
      this.#shell.toast(`Could not join: ${ParleyError.from(err).reason}`);
      return;
    }
    this.#room = room;
    this.#shell.handle.room = room;
    if (room.microphoneError) this.#shell.toast(`No microphone: ${room.microphoneError.reason}`);
    const refresh = () => this.renderTiles();
    room.on('participantsChanged', refresh);
    room.on('trackSubscribed', refresh);
    room.on('trackUnsubscribed', refresh);
    room.on('trackMuted', refresh);
    room.on('trackUnmuted', refresh);
    room.on('mediaRebuilt', refresh);
    room.on('activeSpeakerChanged', refresh);
    room.on('localTrackChanged', () => {
      this.#renderControls();
      this.renderTiles();
    });
    room.on('playbackBlocked', () => this.#shell.toast('Click anywhere to hear the room'));
    room.on('error', (err) => this.#shell.toast(err.reason));
    room.on('closed', () => {
      if (this.#room !== room) return;
      this.leaveUi();
      if (this.#shell.client?.signaling.state === 'connected') this.#shell.showChannels();
    });
    this.#render(room);
  }

  /** Forgets the room (it was closed or left); the caller shows the next view. */
  leaveUi(): void {
    this.#room = null;
    this.#shell.handle.room = null;
    for (const tile of this.#tiles.values()) stopWatching(tile);
    this.#tiles.clear();
    this.#grid = null;
  }

  #render(room: ConferenceRoom): void {
    const name = this.#shell.station?.channels.find((c) => c.id === room.roomId)?.name ?? room.roomId;
    this.#grid = h('div', { class: 'tiles', id: 'tiles' });
    replace(
      this.#shell.view,
      h(
        'div',
        { class: 'channel-head' },
        h('h2', { id: 'room-name' }, name),
        h('span', { class: 'muted', id: 'room-count' }),
      ),
      this.#grid,
      h('div', { class: 'controls', id: 'room-controls', role: 'toolbar', 'aria-label': 'Room controls' }),
    );
    document.addEventListener('click', () => room.resumeAudio(), { once: true });
    this.#renderControls();
    this.renderTiles();
  }

  #renderControls(): void {
    const room = this.#room;
    const bar = document.getElementById('room-controls');
    if (!room || !bar) return;
    const toggle = (id: string, source: TrackSource, label: string, set: (on: boolean) => Promise<void>) => {
      const on = room.localState(source) === 'on';
      return h(
        'button',
        {
          id,
          class: on ? 'control on' : 'control',
          'aria-pressed': on ? 'true' : 'false',
          onclick: () =>
            void set(!on).catch((err: unknown) => this.#shell.toast(ParleyError.from(err).reason)),
        },
        label,
      );
    };
    replace(
      bar,
      toggle('toggle-mic', 'microphone', 'Microphone', (on) => room.setMicrophoneEnabled(on)),
      toggle('toggle-camera', 'camera', 'Camera', (on) => room.setCameraEnabled(on)),
      toggle('toggle-screen', 'screen', 'Share screen', (on) => room.setScreenShareEnabled(on)),
      h('button', { id: 'leave-room', class: 'control leave', onclick: () => void this.#leave() }, 'Leave'),
    );
  }

  /** Brings the tiles in line with the room: one per video, or one per member without video. */
  renderTiles(): void {
    const room = this.#room;
    const grid = this.#grid;
    if (!room || !grid) return;
    const wanted = new Map<
      string,
      { who: ConferenceParticipant; track: MediaStreamTrack | null; source: string; producerId?: string }
    >();
    for (const who of room.participants) {
      const videos: { track: MediaStreamTrack; source: string; producerId?: string }[] = [];
      if (who.isLocal) {
        for (const source of ['camera', 'screen'] as const) {
          const track = room.localTrack(source);
          if (track) videos.push({ track, source });
        }
      } else {
        for (const t of who.tracks.values())
          if (t.kind === 'video')
            videos.push({ track: t.track, source: t.source ?? 'camera', producerId: t.producerId });
      }
      if (videos.length === 0) wanted.set(`${who.sessionId}:none`, { who, track: null, source: 'none' });
      for (const v of videos) wanted.set(`${who.sessionId}:${v.track.id}`, { who, ...v });
    }
    for (const [key, tile] of this.#tiles) {
      if (wanted.has(key)) continue;
      stopWatching(tile);
      tile.el.remove();
      this.#tiles.delete(key);
    }
    const speaking = room.activeSpeaker?.participant.sessionId ?? null;
    for (const [key, { who, track, source, producerId }] of wanted) {
      let tile = this.#tiles.get(key);
      if (!tile) {
        tile = this.#tile(key, track, who.isLocal, producerId);
        this.#tiles.set(key, tile);
        grid.append(tile.el);
      }
      tile.el.classList.toggle('speaking', who.sessionId === speaking);
      this.#label(tile, who, source);
    }
    const count = document.getElementById('room-count');
    if (count) count.textContent = `${room.participants.length} here`;
  }

  #tile(key: string, track: MediaStreamTrack | null, local: boolean, producerId?: string): Tile {
    const el = h('div', { class: 'tile', 'data-key': key });
    let video: HTMLVideoElement | null = null;
    if (track) {
      video = h('video', { autoplay: true, playsinline: true, class: local ? 'mirror' : '' });
      video.muted = true; // audio plays through the room's audio player, never from tiles
      video.srcObject = new MediaStream([track]);
      el.append(video);
    }
    const tile: Tile = { key, el, video, resize: null, visible: null };
    const room = this.#room;
    if (!room || !producerId) return tile;
    el.dataset.producer = producerId;
    // What the server granted is written on the tile (data-layer, data-paused) once it replied.
    if (typeof ResizeObserver === 'function') {
      tile.resize = new ResizeObserver(([entry]) => {
        if (!entry || entry.contentRect.width === 0) return;
        const { width, height } = entry.contentRect;
        void room
          .setRenderedSize(producerId, width, height)
          .then((layer) => {
            if (layer !== null) el.dataset.layer = String(layer);
          })
          .catch(() => undefined);
      });
      tile.resize.observe(el);
    }
    if (typeof IntersectionObserver === 'function') {
      // A tile scrolled out of view costs nothing: its consumer is paused on the server.
      tile.visible = new IntersectionObserver(([entry]) => {
        if (!entry) return;
        const visible = entry.isIntersecting;
        void room
          .setTrackVisibility(producerId, visible)
          .then(() => el.toggleAttribute('data-paused', !visible))
          .catch(() => undefined);
      });
      tile.visible.observe(el);
    }
    return tile;
  }

  #label(tile: Tile, who: ConferenceParticipant, source: string): void {
    const mic = [...who.tracks.values()].find((t) => t.source === 'microphone' || t.kind === 'audio');
    const localMic = who.isLocal ? this.#room?.localState('microphone') : null;
    const muted = who.isLocal ? localMic !== 'on' : !mic || mic.muted;
    tile.el.dataset.user = who.userId;
    tile.el.toggleAttribute('data-muted', muted);
    tile.el.querySelector('.tile-face')?.remove();
    tile.el.querySelector('.tile-name')?.remove();
    if (!tile.video)
      tile.el.append(h('div', { class: 'tile-face avatar big', 'aria-hidden': 'true' }, initials(who.name)));
    tile.el.append(
      h(
        'div',
        { class: 'tile-name' },
        who.name,
        who.nameVerified === false ? ' (unverified)' : '',
        who.isLocal ? ' (you)' : '',
        source === 'screen' ? ' · screen' : '',
        muted ? h('span', { class: 'muted-mark', 'aria-label': 'muted' }, ' 🔇') : null,
        !who.isLocal && source !== 'screen'
          ? h(
              'button',
              {
                class: 'call-btn',
                disabled: this.#shell.inCall,
                onclick: () => void this.#shell.placeCall(who.userId, who.name),
              },
              'Call',
            )
          : null,
      ),
    );
  }

  async #leave(): Promise<void> {
    const room = this.#room;
    this.leaveUi();
    this.#shell.showChannels();
    await room?.leave().catch(() => undefined);
  }
}

function stopWatching(tile: Tile): void {
  tile.resize?.disconnect();
  tile.visible?.disconnect();
}
