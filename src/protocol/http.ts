/**
 * The JSON bodies of the HTTP API that the SDK reads, shared by the server (which declares its
 * handlers' return types with them) and the browser SDK. Types only: importing them pulls nothing,
 * Zod included, into the browser bundle.
 */
import type { Recording, RoomConfig } from './common.js';

/** `GET /api/station`: the station's name, channels and public STUN servers. */
export interface StationInfo {
  name: string;
  /** `stun:` / `stuns:` URLs for the browsers' RTCConfiguration. */
  stunUrls: string[];
  /** Whether rooms that are not in `channels` may be joined. */
  allowAdHocRooms: boolean;
  /**
   * Where to connect for signaling, when the station's manifest names it (`signaling: {url}`, a
   * `ws://` or `wss://` URL); absent: this server's own `/ws`.
   */
  signaling?: { url: string };
  channels: RoomConfig[];
  /**
   * Whether `GET /api/turn-credentials` issues credentials (TURN_SECRET is set). False: the SDK
   * uses STUN only and does not ask (the endpoint would answer 503). Absent from servers older than
   * this field: ask.
   */
  turn?: boolean;
}

/** `GET /api/turn-credentials`: TURN REST credentials (coturn `use-auth-secret`). */
export interface TurnCredentials {
  username: string;
  password: string;
  /** Seconds the credential stays valid. */
  ttl: number;
  uris: string[];
}

/** `GET /api/rooms/:roomId/recordings`: the room's recorded talk bursts, newest first. */
export interface RecordingList {
  recordings: Recording[];
}
