import { describe, expect, it } from 'vitest';
import { REQUESTS, RELAYS } from '../../src/protocol/registry.js';
import { Call } from '../../src/client/call.js';
import { CallManager } from '../../src/client/call-manager.js';
import { ConferenceRoom } from '../../src/client/conference-room.js';
import { MESSAGE_SENDERS, type SenderClasses } from '../../src/client/coverage.js';
import { Heartbeat } from '../../src/client/heartbeat.js';
import { PttChannel } from '../../src/client/ptt-channel.js';
import { SessionResume } from '../../src/client/session-resume.js';
import { SfuSession } from '../../src/client/sfu-session.js';
import { SignalingClient } from '../../src/client/signaling-client.js';

const classes: SenderClasses = {
  SignalingClient,
  SessionResume,
  Heartbeat,
  SfuSession,
  PttChannel,
  ConferenceRoom,
  CallManager,
  Call,
};

describe('MESSAGE_SENDERS (which SDK method sends each client message)', () => {
  it('covers exactly the protocol registry’s requests and relays', () => {
    const registry = [...Object.keys(REQUESTS), ...Object.keys(RELAYS)].sort();
    expect(Object.keys(MESSAGE_SENDERS).sort()).toEqual(registry);
  });

  it('names methods that exist (static or on the prototype)', () => {
    for (const [type, senders] of Object.entries(MESSAGE_SENDERS)) {
      for (const sender of senders) {
        const [name, method] = sender.split('.') as [keyof SenderClasses, string];
        const cls = classes[name] as unknown as Record<string, unknown> & {
          prototype: Record<string, unknown>;
        };
        const fn = cls[method] ?? cls.prototype[method];
        expect(typeof fn, `${type} → ${sender}`).toBe('function');
      }
    }
  });
});
