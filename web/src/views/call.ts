import { ParleyError, type Call, type CallEndReason } from '../../../src/client/index.js';
import { clock, h, initials, replace } from '../dom.js';
import type { Shell } from '../shell.js';

const END_TEXT: Record<CallEndReason, string> = {
  hangup: 'Call ended',
  'remote-hangup': 'The other side hung up',
  rejected: 'Call declined',
  busy: 'Busy: they are in another call',
  'no-answer': 'No answer',
  cancelled: 'Missed call',
  offline: 'They are offline',
  'not-allowed': 'You can call people in your channels only',
  disconnected: 'Call dropped: connection lost',
  failed: 'Call failed: no media connection',
  'answered-elsewhere': 'Answered on another device',
};

/**
 * The 1:1 call panel: ringing (accept, decline, cancel), connecting, and in call (mute, camera,
 * hang up), with the other side's video when they send one.
 */
export class CallView {
  readonly #shell: Shell;
  #call: Call | null = null;
  /** The other side's video: made once per call (re-inserting a playing <video> would pause it). */
  readonly #remoteVideo = h('video', { id: 'call-video', autoplay: true, playsinline: true, hidden: true });
  /** The part of the panel that re-renders (the video stays put). */
  readonly #info = h('div', { class: 'call-info' });

  constructor(shell: Shell) {
    this.#shell = shell;
  }

  get call(): Call | null {
    return this.#call;
  }

  async place(userId: string, name: string): Promise<void> {
    const client = this.#shell.client;
    if (!client || this.#call) return;
    try {
      const call = await client.calls.call(userId, { name });
      this.show(call);
    } catch (err) {
      this.#shell.toast(`Call failed: ${ParleyError.from(err).reason}`);
    }
  }

  /** An outgoing call was placed, or one comes in. */
  show(call: Call): void {
    if (this.#call && this.#call !== call) return; // the SDK already answered "busy"
    this.#call = call;
    this.#shell.handle.call = call;
    const audio = h('audio', { autoplay: true, id: 'call-audio' });
    audio.srcObject = call.remoteStream;
    const video = this.#remoteVideo;
    video.muted = true; // the sound comes through #call-audio
    video.srcObject = call.remoteVideoStream;
    const showVideo = () => {
      video.hidden = call.remoteVideoTrack === null;
      if (!video.hidden) void video.play().catch(() => undefined);
    };
    call.on('stateChanged', () => this.render());
    call.on('muted', () => this.render());
    call.on('localVideoChanged', () => this.render());
    call.on('remoteTrack', () => {
      void audio.play().catch(() => undefined);
      showVideo();
    });
    call.on('remoteTrackRemoved', showVideo);
    call.on('ended', ({ reason }) => {
      this.#shell.toast(END_TEXT[reason]);
      audio.srcObject = null;
      audio.remove();
      video.srcObject = null;
      video.hidden = true;
      if (this.#call === call) {
        this.#call = null;
        this.#shell.handle.call = null;
      }
      this.render();
      this.#shell.callChanged();
    });
    document.body.append(audio);
    replace(this.#shell.callPanel, video, this.#info);
    this.render();
    this.#shell.callChanged();
  }

  /**
   * Every 250 ms: the call timer. Only the title's text changes: rebuilding the buttons on every
   * tick lost any click whose press and release fell on either side of one (the release landed on
   * a new button, so no click fired: a hang-up in the demo's e2e test, Dec 2).
   */
  tick(): void {
    const call = this.#call;
    if (call?.state !== 'active') return;
    const title = this.#info.querySelector('#call-title');
    if (title) title.textContent = inCallTitle(call);
  }

  render(): void {
    const call = this.#call;
    const panel = this.#shell.callPanel;
    if (!call || call.state === 'ended') {
      panel.hidden = true;
      panel.dataset.state = 'none';
      replace(this.#info);
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
              void call.accept().catch((e: unknown) => this.#shell.toast(ParleyError.from(e).reason)),
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
      title = inCallTitle(call);
      actions = [
        h(
          'button',
          { id: 'call-mute', 'aria-pressed': String(call.muted), onclick: () => call.setMuted(!call.muted) },
          call.muted ? 'Unmute' : 'Mute',
        ),
        h(
          'button',
          {
            id: 'toggle-call-camera',
            'aria-pressed': String(call.cameraEnabled),
            onclick: () =>
              void call
                .setCameraEnabled(!call.cameraEnabled)
                .catch((e: unknown) => this.#shell.toast(ParleyError.from(e).reason)),
          },
          'Camera',
        ),
        hangup,
      ];
    }
    replace(
      this.#info,
      h('span', { class: 'avatar big', 'aria-hidden': 'true' }, initials(name)),
      h('p', { class: 'call-title', id: 'call-title' }, title),
      call.muted ? h('p', { class: 'muted small', id: 'call-muted' }, 'You are muted') : null,
      h('div', { class: 'call-actions' }, ...actions),
    );
  }
}

/** The title of an active call, with its running time. */
function inCallTitle(call: Call): string {
  return `In call with ${call.peer.name} · ${clock(Date.now() - (call.startedAt ?? Date.now()))}`;
}
