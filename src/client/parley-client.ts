import { CallManager, type CallManagerOptions } from './call-manager.js';
import { fetchStation, IceServerProvider, type StationInfo } from './http-api.js';
import { ConferenceRoom, type ConferenceRoomOptions } from './conference-room.js';
import { PttChannel, type PttChannelOptions } from './ptt-channel.js';
import { SignalingClient, type SignalingClientOptions } from './signaling-client.js';
import { serverUrls } from './server-url.js';

export interface ParleyClientOptions extends Omit<SignalingClientOptions, 'url'> {
  /** The server's base URL, e.g. `https://voice.example.com`. Default: the page's origin. */
  url?: string;
  /** Options of the 1:1 calls (ICE servers default to the station's STUN + TURN credentials). */
  calls?: CallManagerOptions;
}

/**
 * The one object most apps need (LiveKit's Room layer): the signaling connection, 1:1 calls and
 * PTT channels, with ICE servers from `/api/station` and `/api/turn-credentials`.
 *
 * ```ts
 * const parley = await ParleyClient.connect({ token });
 * parley.calls.on('incoming', (call) => call.accept());
 * const channel = await parley.joinPtt('dispatch');
 * ```
 */
export class ParleyClient {
  readonly signaling: SignalingClient;
  readonly calls: CallManager;
  readonly iceServers: IceServerProvider;
  /** The HTTP base, e.g. `https://voice.example.com`. */
  readonly baseUrl: string;
  readonly #channels = new Set<PttChannel | ConferenceRoom>();
  #closed = false;

  constructor(options: ParleyClientOptions) {
    const base = options.url ?? globalThis.location?.origin;
    if (!base) throw new TypeError('ParleyClient: pass `url` (no page origin to default to)');
    const urls = serverUrls(base);
    this.baseUrl = urls.http;
    this.signaling = new SignalingClient({ ...options, url: urls.ws });
    this.iceServers = new IceServerProvider({ baseUrl: this.baseUrl, token: options.token });
    this.calls = new CallManager(this.signaling, {
      iceServers: () => this.iceServers.get(),
      ...options.calls,
    });
  }

  /** Creates a client and connects it (rejects with a ParleyError if the first connection fails). */
  static async connect(options: ParleyClientOptions): Promise<ParleyClient> {
    const client = new ParleyClient(options);
    try {
      await client.signaling.connect();
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** `GET /api/station`: name, channels, STUN servers. */
  station(): Promise<StationInfo> {
    return fetchStation(this.baseUrl);
  }

  /** Joins a PTT channel (see PttChannel.join). */
  async joinPtt(roomId: string, options: PttChannelOptions = {}): Promise<PttChannel> {
    const channel = await PttChannel.join(this.signaling, roomId, options);
    this.#channels.add(channel);
    channel.on('closed', () => this.#channels.delete(channel));
    return channel;
  }

  /** Joins a conference room (see ConferenceRoom.join). */
  async joinConference(roomId: string, options: ConferenceRoomOptions = {}): Promise<ConferenceRoom> {
    const room = await ConferenceRoom.join(this.signaling, roomId, options);
    this.#channels.add(room);
    room.on('closed', () => this.#channels.delete(room));
    return room;
  }

  /** Hangs up, leaves every channel and room and closes the connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.calls.close();
    for (const channel of [...this.#channels]) channel.close();
    this.signaling.close();
  }
}
