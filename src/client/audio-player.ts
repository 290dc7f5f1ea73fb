import { TypedEmitter } from './emitter.js';

export type AudioPlayerEvents = {
  /** The browser refused to start playback without a user gesture: call `resume()` from a click. */
  playbackBlocked: [];
  playbackResumed: [];
};

/**
 * Plays remote audio tracks through hidden `<audio>` elements, one per track (a browser only
 * pulls remote WebRTC audio that is attached to a media element). Handles autoplay refusals:
 * `playbackBlocked` fires, and `resume()` from a user gesture starts everything.
 */
export class AudioPlayer extends TypedEmitter<AudioPlayerEvents> {
  readonly #container: HTMLElement | null;
  readonly #elements = new Map<MediaStreamTrack, HTMLAudioElement>();
  /** Recorded clips playing (playClip). */
  readonly #clips = new Set<HTMLAudioElement>();
  #volume = 1;
  #muted = false;
  #blocked = false;
  #closed = false;

  /** @param container where the elements go (default `document.body`). */
  constructor(container?: HTMLElement) {
    super();
    this.#container = container ?? globalThis.document?.body ?? null;
  }

  /**
   * What an `audio` option means: an AudioPlayer to use (not owned), `false` (or no DOM) for none,
   * or a container element (default document.body) for a new player the caller owns and closes.
   */
  static resolve(audio: AudioPlayer | HTMLElement | false | undefined): {
    player: AudioPlayer | null;
    owned: boolean;
  } {
    if (audio instanceof AudioPlayer) return { player: audio, owned: false };
    if (audio === false || !globalThis.document) return { player: null, owned: false };
    return { player: new AudioPlayer(audio), owned: true };
  }

  get blocked(): boolean {
    return this.#blocked;
  }

  /** The element playing `track`, if any (e.g. to call `setSinkId` for another output device). */
  elementOf(track: MediaStreamTrack): HTMLAudioElement | undefined {
    return this.#elements.get(track);
  }

  attach(track: MediaStreamTrack): HTMLAudioElement | null {
    if (this.#closed || !globalThis.document) return null;
    const existing = this.#elements.get(track);
    if (existing) return existing;
    const el = document.createElement('audio');
    el.autoplay = true;
    el.setAttribute('playsinline', '');
    el.dataset.parleyTrack = track.id;
    el.hidden = true;
    el.volume = this.#volume;
    el.muted = this.#muted;
    el.srcObject = new MediaStream([track]);
    this.#container?.appendChild(el);
    this.#elements.set(track, el);
    this.#play(el);
    return el;
  }

  detach(track: MediaStreamTrack): void {
    const el = this.#elements.get(track);
    if (!el) return;
    this.#elements.delete(track);
    el.pause();
    el.srcObject = null;
    el.remove();
  }

  /** 0..1 */
  setVolume(volume: number): void {
    this.#volume = Math.min(1, Math.max(0, volume));
    for (const el of [...this.#elements.values(), ...this.#clips]) el.volume = this.#volume;
  }

  setMuted(muted: boolean): void {
    this.#muted = muted;
    for (const el of [...this.#elements.values(), ...this.#clips]) el.muted = muted;
  }

  /**
   * Plays a recorded clip (e.g. an Ogg Opus recording) through this player: same container,
   * volume and mute as the live audio. Resolves when it has played to the end (or was stopped by
   * `close()`); rejects if the browser cannot play it. A refusal without a user gesture emits
   * `playbackBlocked` and rejects with NotAllowedError.
   */
  async playClip(clip: Blob): Promise<void> {
    if (this.#closed || !globalThis.document) throw new Error('the audio player is closed');
    const url = URL.createObjectURL(clip);
    const el = document.createElement('audio');
    el.dataset.parleyClip = '';
    el.hidden = true;
    el.volume = this.#volume;
    el.muted = this.#muted;
    el.src = url;
    this.#container?.appendChild(el);
    this.#clips.add(el);
    try {
      await new Promise<void>((resolve, reject) => {
        el.onended = () => resolve();
        el.onerror = () =>
          reject(new Error(`the recording could not be played (${el.error?.message ?? 'decode error'})`));
        el.addEventListener('parley-stop', () => resolve(), { once: true });
        el.play().catch((err: unknown) => {
          if ((err as { name?: string }).name === 'NotAllowedError' && !this.#blocked) {
            this.#blocked = true;
            this.emit('playbackBlocked');
          }
          reject(err instanceof Error ? err : new Error(String(err)));
        });
      });
    } finally {
      this.#clips.delete(el);
      el.pause();
      el.remove();
      URL.revokeObjectURL(url);
    }
  }

  /** Retries playback; call from a user gesture after `playbackBlocked`. */
  resume(): void {
    for (const el of this.#elements.values()) this.#play(el);
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const track of [...this.#elements.keys()]) this.detach(track);
    for (const el of this.#clips) el.dispatchEvent(new Event('parley-stop'));
    this.#closed = true;
    this.removeAllListeners();
  }

  #play(el: HTMLAudioElement): void {
    el.play().then(
      () => {
        if (!this.#blocked) return;
        this.#blocked = false;
        this.emit('playbackResumed');
      },
      (err: unknown) => {
        if ((err as { name?: string }).name !== 'NotAllowedError' || this.#blocked) return;
        this.#blocked = true;
        this.emit('playbackBlocked');
      },
    );
  }
}
