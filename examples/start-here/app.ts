// The "Start here" page of docs/sdk.md with a bundler: `npm install @parley-rtc/sdk`, then bundle
// this file (esbuild, Vite, webpack…). test/packages/packages.test.ts installs the packed SDK into a
// scratch project, type-checks this file against it with tsc --strict and bundles it with esbuild.
import { devToken, ParleyClient, ParleyError, type Call } from '@parley-rtc/sdk';

const SERVER = 'http://localhost:3000'; // your Parley server (a development one: /api/dev-token)
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

try {
  // 1. Connect with a development token; in production, a function fetching your backend's JWT.
  const parley = await ParleyClient.connect({ url: SERVER, token: devToken(SERVER, 'Alice') });
  $('me').textContent = `${parley.signaling.name} (${parley.signaling.userId})`;
  parley.signaling.on('connectionStateChanged', (state) => ($('state').textContent = state));

  // 2. Push-to-talk on the default station's "dispatch" channel.
  const channel = await parley.joinPtt('dispatch');
  channel.on('speakerChanged', (speaker) => {
    $('speaker').textContent = speaker ? `${speaker.name} is speaking` : 'Channel is clear';
  });
  const talk = $<HTMLButtonElement>('talk');
  talk.disabled = !channel.canTalk;
  talk.onpointerdown = () => void channel.startTalking();
  talk.onpointerup = talk.onpointercancel = () => void channel.stopTalking();

  // 3. A 1:1 call, both sides.
  const show = (call: Call) => {
    $<HTMLAudioElement>('remote').srcObject = call.remoteStream;
    call.on('stateChanged', (state) => ($('call-state').textContent = state));
  };
  $('call').onclick = async () => show(await parley.calls.call($<HTMLInputElement>('callee').value));
  parley.calls.on('incoming', (call) => {
    show(call);
    $('accept').onclick = () => void call.accept();
  });
} catch (err) {
  // UNAUTHORIZED, NOT_FOUND (wrong path), CONNECTION_FAILED (unreachable), INVALID_URL, …
  $('state').textContent = err instanceof ParleyError ? `${err.code}: ${err.reason}` : String(err);
}
