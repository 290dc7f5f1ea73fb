import { z } from 'zod';
import { Participant } from '../../../protocol/index.js';
import type { HeldLock, ResumeRecord } from '../state-store.js';

/**
 * The shapes stored as JSON in Redis. Anything read back is checked against them: Redis is shared
 * with other nodes (possibly running another version) and with operators' hands, so a value that
 * does not parse is treated as absent instead of crashing a handler.
 */
export const ParticipantRecord = Participant;

export const ResumeRecordSchema = z.object({ sessionId: z.string(), userId: z.string() });

/** Mirrors `decode_lock` in lua.ts, which must agree on what counts as a lock. */
export const HeldLockSchema = z.object({
  fence: z.number(),
  sessionId: z.string(),
  userId: z.string(),
  name: z.string(),
  nameVerified: z.literal(false).optional(),
  priority: z.number(),
  since: z.number(),
});

// Compile-time checks that the schemas produce the interface types.
const _resume: z.ZodType<ResumeRecord> = ResumeRecordSchema;
const _lock: z.ZodType<HeldLock> = HeldLockSchema;
void _resume;
void _lock;

/** Parses `raw` as JSON of `schema`; null (and `onCorrupt` called) when it is anything else. */
export function parseRecord<T>(
  schema: z.ZodType<T>,
  raw: string,
  onCorrupt: (why: string) => void,
): T | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    onCorrupt('not JSON');
    return null;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    onCorrupt(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
    return null;
  }
  return parsed.data;
}
