import type { RoomConfig } from '../../protocol/index.js';
import type { Channel, StationManifest } from '../config/manifest.js';

/** What media and PTT need of the catalog: a room's configuration. */
export interface ChannelResolver {
  /** The full channel entry (with PTT settings) or, for ad-hoc rooms, the ad-hoc defaults; null if none. */
  resolve(roomId: string): Channel | null;
}

/** Resolves a room id to its configuration: a manifest channel, an ad-hoc room, or nothing. */
export class RoomCatalog implements ChannelResolver {
  readonly #channels: Map<string, Channel>;
  readonly #manifest: StationManifest;

  constructor(manifest: StationManifest) {
    this.#manifest = manifest;
    this.#channels = new Map(manifest.channels.map((c) => [c.id, c]));
  }

  /** The full channel entry (with PTT settings) or, for ad-hoc rooms, the ad-hoc defaults. */
  resolve(roomId: string): Channel | null {
    const channel = this.#channels.get(roomId);
    if (channel) return channel;
    if (!this.#manifest.allowAdHocRooms) return null;
    return { id: roomId, name: roomId, ...this.#manifest.adHocRoom };
  }

  /** True for a channel of the manifest (ad-hoc rooms are not declared). */
  declares(roomId: string): boolean {
    return this.#channels.has(roomId);
  }

  static publicConfig(channel: Channel): RoomConfig {
    const { id, name, mode, maxParticipants } = channel;
    return { id, name, mode, maxParticipants };
  }
}
