import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../src/server/http/client-address.js';

const req = (xff: string | string[] | undefined) =>
  ({
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    socket: { remoteAddress: '10.0.0.5' },
  }) as unknown as IncomingMessage;

describe('clientAddress', () => {
  it('is the socket address unless the proxy is trusted', () => {
    expect(clientAddress(req('203.0.113.9'), false)).toBe('10.0.0.5');
    expect(clientAddress(req(undefined), true)).toBe('10.0.0.5');
  });

  it('behind a trusted proxy, takes the hop the proxy appended, never one the client made up', () => {
    expect(clientAddress(req('203.0.113.9'), true)).toBe('203.0.113.9');
    // The client sent "X-Forwarded-For: 1.2.3.4"; HAProxy's option forwardfor appended the real one.
    expect(clientAddress(req('1.2.3.4, 203.0.113.9'), true)).toBe('203.0.113.9');
    // Two header lines (Node joins them, but be safe with an array too).
    expect(clientAddress(req(['1.2.3.4', '203.0.113.9']), true)).toBe('203.0.113.9');
  });
});
