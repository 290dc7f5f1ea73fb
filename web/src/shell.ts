import type { Call, ConferenceRoom, ParleyClient, PttChannel, StationInfo } from '../../src/client/index.js';
import type { Identity } from './identity.js';

/** What the demo exposes on `window.parleyDemo` for the console (and the end-to-end tests). */
export interface DemoHandle {
  client: ParleyClient | null;
  channel: PttChannel | null;
  /** The conference room shown, if any. */
  room: ConferenceRoom | null;
  call: Call | null;
}

/** What the views use of the app shell: the shared state, the layout and moving between views. */
export interface Shell {
  readonly station: StationInfo | null;
  readonly client: ParleyClient | null;
  readonly handle: DemoHandle;
  /** The main area, where one view at a time renders. */
  readonly view: HTMLElement;
  /** The call panel, beside whatever view is shown. */
  readonly callPanel: HTMLElement;
  toast(text: string): void;
  /** The signed-in token is an admin token (the Admin panel is offered). */
  readonly isAdmin: boolean;
  /** Shows or hides the Admin panel; returns whether it is shown. */
  toggleAdmin(): boolean;
  connect(identity: Identity): Promise<void>;
  signOut(): void;
  showChannels(): void;
  joinChannel(roomId: string): Promise<void>;
  joinConference(roomId: string): Promise<void>;
  /** A 1:1 call is up (the member list disables its Call buttons). */
  readonly inCall: boolean;
  placeCall(userId: string, name: string): Promise<void>;
  /** The call state changed: refresh what depends on it (the member list). */
  callChanged(): void;
}
