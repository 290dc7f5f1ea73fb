import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Call, ParleyClient } from '../../src/client/index.js';
import { assertLoopbackOnly } from '../helpers/netns.js';
import { waitUntil } from '../helpers/wait.js';
import { openSdkPage, startE2eServer, type BrowserPage, type E2eServer } from './harness.js';

interface VideoCallPage {
  parley: ParleyClient;
  call: Call | null;
  /** The call's events in order: `ringing`, `state:<s>`, `add:<kind>`, `remove:<kind>`, `ended:<reason>`. */
  log: string[];
  /** Draws moving frames into the canvas whose track stands in for a screen share. */
  screen: () => Promise<MediaStreamTrack>;
}

declare global {
  interface Window {
    videoTest: VideoCallPage;
  }
}

/** Connects the SDK in the page; keeps the current call on window.videoTest and renders its remote video. */
async function connect(b: BrowserPage, token: string): Promise<void> {
  await b.page.evaluate(async (token) => {
    const screen = async () => {
      // A 4:3 canvas stands in for the screen (the fake camera is 16:9), so the other side can tell.
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 240;
      const g = canvas.getContext('2d');
      let n = 0;
      setInterval(() => {
        if (!g) return;
        g.fillStyle = `hsl(${(n += 7) % 360} 80% 50%)`;
        g.fillRect(0, 0, 320, 240);
      }, 33);
      const track = canvas.captureStream(30).getVideoTracks()[0];
      if (!track) throw new Error('no canvas track');
      return Promise.resolve(track);
    };
    const parley = await window.Parley.ParleyClient.connect({
      url: location.origin,
      token,
      calls: { getScreen: screen },
    });
    // A call rings users who share a room with the caller (CALL_POLICY=shared-room, the default):
    // both pages sit in the lobby, as demo users call each other from a channel's member list.
    await parley.signaling.joinRoom('lobby');
    const t: VideoCallPage = { parley, call: null, log: [], screen };
    window.videoTest = t;
    const video = document.createElement('video');
    video.id = 'remote-video';
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    const watch = (call: Call) => {
      t.call = call;
      video.srcObject = call.remoteVideoStream;
      call.on('stateChanged', (s) => t.log.push(`state:${s}`));
      call.on('remoteTrack', (track) => t.log.push(`add:${track.kind}`));
      call.on('remoteTrackRemoved', (track) => t.log.push(`remove:${track.kind}`));
      call.on('ended', ({ reason }) => t.log.push(`ended:${reason}`));
    };
    parley.calls.on('incoming', (call) => {
      t.log.push('ringing');
      watch(call);
    });
    (window as unknown as { watchCall: (c: Call) => void }).watchCall = watch;
  }, token);
}

/** What the page's <video> shows of the other side, and what its peer connection decoded. */
const remoteVideo = (b: BrowserPage) =>
  b.page.evaluate(async () => {
    const video = document.getElementById('remote-video') as HTMLVideoElement;
    const report = await window.videoTest.call?.peerConnection?.getStats();
    let framesDecoded = 0;
    let frameWidth = 0;
    let frameHeight = 0;
    report?.forEach(
      (s: {
        type: string;
        kind?: string;
        framesDecoded?: number;
        frameWidth?: number;
        frameHeight?: number;
      }) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        framesDecoded += s.framesDecoded ?? 0;
        frameWidth = s.frameWidth ?? frameWidth;
        frameHeight = s.frameHeight ?? frameHeight;
      },
    );
    return {
      framesDecoded,
      frameWidth,
      frameHeight,
      videoWidth: video.videoWidth,
      hasTrack: window.videoTest.call?.remoteVideoTrack != null,
    };
  });

/** Waits until the page decodes the other side's video and shows it in its <video>. */
async function expectVideoFlowing(b: BrowserPage, what: string, shape?: (w: number, h: number) => boolean) {
  const first = await remoteVideo(b);
  await waitUntil(
    async () => {
      const now = await remoteVideo(b);
      return (
        now.hasTrack &&
        now.videoWidth > 0 &&
        now.framesDecoded - first.framesDecoded > 15 &&
        (!shape || shape(now.frameWidth, now.frameHeight))
      );
    },
    what,
    15_000,
    100,
  );
}

describe('video calls between Chromium pages', () => {
  let srv: E2eServer;
  const pages: BrowserPage[] = [];
  const open = async (sub: string, name: string) => {
    const b = await openSdkPage(srv);
    pages.push(b);
    await connect(b, await srv.token(sub, name));
    return b;
  };

  beforeAll(async () => {
    assertLoopbackOnly();
    srv = await startE2eServer({ env: { MEDIASOUP_WORKERS: '0' }, manifest: { stunUrls: [] } });
  });

  afterAll(async () => {
    const errors = pages.flatMap((p) => p.errors);
    await Promise.all(pages.map((p) => p.close()));
    await srv?.close();
    if (errors.length) console.warn(`browser errors:\n${errors.join('\n')}`);
  });

  it('an audio call gets a camera added mid-call: it renders on the other side; then both cameras, a screen share, and camera off', async () => {
    const [alice, bob] = await Promise.all([open('v-alice', 'Alice'), open('v-bob', 'Bob')]);
    await alice.page.evaluate(async () => {
      const call = await window.videoTest.parley.calls.call('v-bob', { name: 'Bob' });
      (window as unknown as { watchCall: (c: Call) => void }).watchCall(call);
    });
    await bob.page.waitForFunction(() => window.videoTest.call?.state === 'ringing');
    await bob.page.evaluate(() => window.videoTest.call?.accept());
    await Promise.all(
      [alice, bob].map((p) => p.page.waitForFunction(() => window.videoTest.call?.state === 'active')),
    );
    expect(await bob.page.evaluate(() => window.videoTest.call?.remoteVideoTrack ?? null)).toBeNull();

    // ---- the caller turns the camera on mid-call: renegotiated, and it renders at Bob's ----
    const local = await alice.page.evaluate(async () => {
      const call = window.videoTest.call;
      await call?.setCameraEnabled(true);
      return { ...call?.localVideo, track: call?.localVideoTrack?.kind };
    });
    expect(local).toEqual({ camera: true, screen: false, track: 'video' });
    await expectVideoFlowing(bob, 'Alice’s camera to render at Bob’s', (w, h) => h / w < 0.7);

    // ---- the callee (the polite side) turns its camera on too ----
    await bob.page.evaluate(() => window.videoTest.call?.setCameraEnabled(true));
    await expectVideoFlowing(alice, 'Bob’s camera to render at Alice’s');

    // ---- a screen share replaces Alice's camera (4:3 canvas instead of the 16:9 camera) ----
    await alice.page.evaluate(() => window.videoTest.call?.startScreenShare());
    expect(await alice.page.evaluate(() => window.videoTest.call?.localVideo.screen)).toBe(true);
    await expectVideoFlowing(bob, 'Alice’s screen at Bob’s', (w, h) => Math.abs(h / w - 0.75) < 0.05);
    await alice.page.evaluate(() => window.videoTest.call?.stopScreenShare());
    await expectVideoFlowing(bob, 'Alice’s camera again at Bob’s', (w, h) => h / w < 0.7);

    // ---- Alice's camera off: Bob hears the track go, Alice's camera is released ----
    const cameraAfter = await alice.page.evaluate(async () => {
      const call = window.videoTest.call;
      const track = call?.localVideoTrack;
      await call?.setCameraEnabled(false);
      return { state: track?.readyState, local: call?.localVideoTrack ?? null };
    });
    expect(cameraAfter).toEqual({ state: 'ended', local: null });
    await bob.page.waitForFunction(() => window.videoTest.log.includes('remove:video'));
    expect(await bob.page.evaluate(() => window.videoTest.call?.remoteVideoTrack ?? null)).toBeNull();
    // Bob still sends his camera, and the call still carries audio.
    await expectVideoFlowing(alice, 'Bob’s camera after Alice’s went off');
    expect(await bob.page.evaluate(() => window.videoTest.call?.state)).toBe('active');

    await alice.page.evaluate(() => window.videoTest.call?.hangup());
    await bob.page.waitForFunction(() => window.videoTest.log.some((l) => l.startsWith('ended:')));
    const bobLog = await bob.page.evaluate(() => window.videoTest.log);
    expect(bobLog.filter((l) => !l.startsWith('add:audio'))).toEqual([
      'ringing',
      'state:connecting',
      'state:active',
      'add:video',
      'remove:video',
      'state:ended',
      'ended:remote-hangup',
    ]);
    expect(
      await bob.page.evaluate(() => ({
        camera: window.videoTest.call?.cameraEnabled,
        remote: window.videoTest.call?.remoteVideoStream.getTracks().length,
      })),
    ).toEqual({ camera: false, remote: 0 });
  });

  it('a call that starts with the camera on; of the callee’s two devices, the one that did not answer stops ringing', async () => {
    const caller = await open('md-alice', 'Alice');
    const phone = await open('md-bob', 'Bob');
    const laptop = await open('md-bob', 'Bob');
    await caller.page.evaluate(async () => {
      const call = await window.videoTest.parley.calls.call('md-bob', { name: 'Bob', video: true });
      (window as unknown as { watchCall: (c: Call) => void }).watchCall(call);
    });
    await Promise.all(
      [phone, laptop].map((p) => p.page.waitForFunction(() => window.videoTest.call?.state === 'ringing')),
    );
    await laptop.page.evaluate(() => window.videoTest.call?.accept({ video: true }));
    await phone.page.waitForFunction(() => window.videoTest.call?.state === 'ended');
    expect(await phone.page.evaluate(() => window.videoTest.log)).toEqual([
      'ringing',
      'state:ended',
      'ended:answered-elsewhere',
    ]);
    expect(await phone.page.evaluate(() => window.videoTest.parley.calls.calls.length)).toBe(0);

    await Promise.all(
      [caller, laptop].map((p) => p.page.waitForFunction(() => window.videoTest.call?.state === 'active')),
    );
    // Both started with the camera: each renders the other's, with no renegotiation needed.
    await Promise.all([
      expectVideoFlowing(laptop, 'the caller’s camera at the laptop'),
      expectVideoFlowing(caller, 'the laptop’s camera at the caller'),
    ]);
    expect(await laptop.page.evaluate(() => window.videoTest.call?.peerConnection?.counters.offersSent)).toBe(
      0,
    );

    // The phone never rings again for this call, not even on renegotiation.
    await caller.page.evaluate(() => window.videoTest.call?.setCameraEnabled(false));
    await laptop.page.waitForFunction(() => window.videoTest.log.includes('remove:video'));
    await caller.page.evaluate(() => window.videoTest.call?.hangup());
    await laptop.page.waitForFunction(() => window.videoTest.call?.state === 'ended');
    expect(await phone.page.evaluate(() => window.videoTest.log)).toEqual([
      'ringing',
      'state:ended',
      'ended:answered-elsewhere',
    ]);
  });
});
