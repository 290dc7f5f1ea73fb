import type { ServerPayload } from '../../protocol/index.js';
import type { HeldLock } from '../state/state-store.js';
import { frame, type Frame } from '../wire/frame.js';

type Speaker = ServerPayload<'ptt:speaker-changed'>['speaker'];

/** The public view of a speaker lock's holder (what `room:state` and `ptt:speaker-changed` carry). */
export function speakerOf(lock: HeldLock | null): Speaker {
  if (!lock) return null;
  const { userId, name, sessionId, since } = lock;
  return lock.nameVerified === false
    ? { userId, name, sessionId, since, nameVerified: false }
    : { userId, name, sessionId, since };
}

/** `ptt:speaker-changed`: built here only, whoever has news of the floor. */
export function speakerChanged(roomId: string, speaker: Speaker, at: number): Frame {
  return frame('ptt:speaker-changed', { roomId, speaker, at });
}
