import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { RoomConfig, RoomMode, type StationInfo } from '../../protocol/index.js';
import { ConfigError } from './env.js';
import { defaultManifest } from './defaults.js';

const Channel = RoomConfig.extend({
  /** PTT only: longest talk burst before the floor is revoked. */
  maxTalkMs: z.number().int().min(1_000).max(3_600_000).optional(),
  /** PTT only: queue floor requests instead of denying them. */
  queue: z.boolean().optional(),
  /** PTT only: keep every talk burst as an Ogg Opus recording (GET /api/rooms/:roomId/recordings). */
  record: z.boolean().optional(),
  /** With `record`: hours a recording is kept (default RECORDING_RETENTION_HOURS). */
  recordRetentionHours: z.number().positive().max(87_600).optional(),
})
  .strict()
  .refine((c) => !c.record || c.mode === 'ptt', {
    message: 'only ptt channels can be recorded',
    path: ['record'],
  })
  .refine((c) => c.recordRetentionHours === undefined || c.record === true, {
    message: 'recordRetentionHours needs "record": true',
    path: ['recordRetentionHours'],
  });
export type Channel = z.infer<typeof Channel>;

/** The station manifest (PARLEY_MANIFEST). Strict: an unknown field is a typo, and a typo should stop start-up. */
export const StationManifest = z
  .object({
    name: z.string().min(1).max(128).default(defaultManifest.name),
    stunUrls: z
      .array(z.string().regex(/^stuns?:/, 'STUN URLs start with stun: or stuns:'))
      .default([...defaultManifest.stunUrls]),
    allowAdHocRooms: z.boolean().default(defaultManifest.allowAdHocRooms),
    adHocRoom: z
      .object({ mode: RoomMode, maxParticipants: z.number().int().min(1).max(100_000) })
      .strict()
      .default({ ...defaultManifest.adHocRoom }),
    /**
     * Where clients connect for signaling, when it is not this server's own `/ws` (a load
     * balancer's address, another host). Served in /api/station; the server itself never dials it.
     */
    signaling: z
      .object({
        url: z.url({ protocol: /^wss?$/, error: 'expected a ws:// or wss:// URL' }).max(2_048),
      })
      .strict()
      .optional(),
    channels: z
      .array(Channel)
      .default(defaultManifest.channels.map((c) => ({ ...c })))
      .refine((chs) => new Set(chs.map((c) => c.id)).size === chs.length, 'channel ids must be unique'),
  })
  .strict();
export type StationManifest = z.infer<typeof StationManifest>;

/** The public part served at GET /api/station. */
export function publicStation(manifest: StationManifest): StationInfo {
  return {
    name: manifest.name,
    stunUrls: manifest.stunUrls,
    allowAdHocRooms: manifest.allowAdHocRooms,
    ...(manifest.signaling ? { signaling: { url: manifest.signaling.url } } : {}),
    channels: manifest.channels.map(({ id, name, mode, maxParticipants }) => ({
      id,
      name,
      mode,
      maxParticipants,
    })),
  };
}

/**
 * Loads the manifest. A missing file (or no path) means the defaults; an unreadable, corrupt or
 * invalid file throws a ConfigError naming the file and the bad field.
 */
export async function loadManifest(path: string | undefined): Promise<StationManifest> {
  if (!path) return StationManifest.parse({});
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return StationManifest.parse({});
    throw new ConfigError(`PARLEY_MANIFEST: cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`PARLEY_MANIFEST: ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = StationManifest.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
    throw new ConfigError(`PARLEY_MANIFEST: ${path} is invalid:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
