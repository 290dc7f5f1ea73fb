/**
 * Call messages for relay tests: a minimal SDP body, and trickled candidates numbered so that a
 * recipient can tell which ones it got, and in what order.
 */

/** The smallest SDP body the protocol accepts. */
export const TEST_SDP = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

/** One message a client sends. */
export type Step = { type: string; payload: Record<string, unknown> };

/** `call:ice-candidate`'s payload for candidate number `n` (its foundation). */
export function icePayload(recipientId: string, callId: string, n: number) {
  return {
    recipientId,
    callId,
    candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 9 typ host`, sdpMid: '0' },
  };
}

export function iceStep(recipientId: string, callId: string, n: number): Step {
  return { type: 'call:ice-candidate', payload: icePayload(recipientId, callId, n) };
}

/** The number `icePayload` gave a relayed candidate, or undefined when the payload has none. */
export function candidateNumber(payload: Record<string, unknown>): string | undefined {
  const cand = (payload.candidate as { candidate?: string } | null | undefined)?.candidate;
  return cand ? /^candidate:(\d+)/.exec(cand)?.[1] : undefined;
}
