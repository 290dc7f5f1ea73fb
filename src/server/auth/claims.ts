import { z } from 'zod';
import { TrackSource, UserId } from '../../protocol/index.js';

/**
 * The JWT claims Parley reads. `sub` is the user id and `name` the display name; the rest are
 * grants. Other claims are allowed and ignored.
 */
export const Claims = z.object({
  sub: UserId,
  name: z.string().min(1).max(128).optional(),
  /** Rooms the user may join. Absent: any room. `"*"` also means any room. */
  rooms: z.array(z.string().min(1).max(64)).max(1_000).optional(),
  /** May publish media (produce). Default true. */
  canPublish: z.boolean().optional(),
  /**
   * What the user may publish, by produce's `appData.source` (a produce without one counts as
   * `microphone` for audio, `camera` for video). Absent: every source. `[]`: none.
   */
  canPublishSources: z.array(TrackSource).max(3).optional(),
  /** May subscribe to media (consume). Default true. */
  canSubscribe: z.boolean().optional(),
  /** PTT priority; a strictly higher priority pre-empts the current speaker. Default 0. */
  pttPriority: z.number().int().min(0).max(100).optional(),
  /** May list and play a room's PTT recordings (GET /api/rooms/:roomId/recordings). Default true. */
  canReplay: z.boolean().optional(),
  /** Admin: every room, every grant. */
  admin: z.boolean().optional(),
});
export type Claims = z.infer<typeof Claims>;

/** The authenticated user, as the server uses it everywhere. Never built from a message field. */
export interface Identity {
  userId: string;
  name: string;
  rooms: ReadonlySet<string> | null;
  canPublish: boolean;
  /** The sources the user may publish; null: every source. */
  publishSources: ReadonlySet<TrackSource> | null;
  canSubscribe: boolean;
  pttPriority: number;
  /** May list and play recordings of the rooms it may join. */
  canReplay: boolean;
  admin: boolean;
  /** Token expiry (ms since epoch), if the token had one. */
  expiresAt: number | null;
  /**
   * false: the token carries no `name` (`name` is then the user id, and a client-chosen
   * displayName may stand in for it, shown as unverified). Absent or true: the name is the token's.
   */
  nameVerified?: boolean;
  /**
   * Names the token itself (a hash of it, never the token): a user removed from a room through the
   * server API cannot rejoin it with the same token. Absent for identities not built from a token.
   */
  tokenId?: string;
}

/**
 * @param tokenId one of the literal's own properties: V8 gives `{ ...identity, tokenId }` a hidden
 *   class of its own per object (~0.4 KiB per connection, and megamorphic property reads), and a
 *   property assigned after the literal lands outside the object, in a property array of its own
 *   (40 B per connection). Absent (undefined) for identities not built from a token.
 */
export function identityFromClaims(claims: Claims, exp: number | undefined, tokenId?: string): Identity {
  const rooms = claims.rooms && !claims.rooms.includes('*') ? new Set(claims.rooms) : null;
  const identity: Identity = {
    userId: claims.sub,
    name: claims.name ?? claims.sub,
    rooms,
    canPublish: claims.canPublish ?? true,
    publishSources: claims.canPublishSources ? new Set(claims.canPublishSources) : null,
    canSubscribe: claims.canSubscribe ?? true,
    pttPriority: claims.pttPriority ?? 0,
    canReplay: claims.canReplay ?? true,
    admin: claims.admin ?? false,
    expiresAt: exp === undefined ? null : exp * 1000,
    nameVerified: claims.name !== undefined,
    tokenId,
  };
  return identity;
}

export function mayJoinRoom(identity: Identity, roomId: string): boolean {
  return identity.admin || identity.rooms === null || identity.rooms.has(roomId);
}
