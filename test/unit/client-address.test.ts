import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress, ProxyTrust } from '../../src/server/http/client-address.js';
import { loadConfig } from '../../src/server/config/env.js';

const req = (xff: string | string[] | undefined, peer = '10.0.0.5') =>
  ({
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    socket: { remoteAddress: peer },
  }) as unknown as IncomingMessage;

/** TRUST_PROXY as an operator writes it, through the real config parser. */
const trust = (value: string) => new ProxyTrust(loadConfig({ TRUST_PROXY: value }).trustProxy);

describe('clientAddress', () => {
  it('is the socket address unless a proxy is trusted', () => {
    expect(clientAddress(req('203.0.113.9'), trust('false'))).toBe('10.0.0.5');
    expect(clientAddress(req('203.0.113.9'), trust('0'))).toBe('10.0.0.5');
    expect(clientAddress(req(undefined), trust('true'))).toBe('10.0.0.5');
    // An IPv4 client on a dual-stack socket is keyed by its IPv4 address.
    expect(clientAddress(req(undefined, '::ffff:10.0.0.7'), trust('no'))).toBe('10.0.0.7');
  });

  it('TRUST_PROXY=true (one hop): the entry the proxy appended, never one the client made up', () => {
    expect(clientAddress(req('203.0.113.9'), trust('true'))).toBe('203.0.113.9');
    // The client sent "X-Forwarded-For: 1.2.3.4"; HAProxy's option forwardfor appended the real one.
    expect(clientAddress(req('1.2.3.4, 203.0.113.9'), trust('yes'))).toBe('203.0.113.9');
    expect(clientAddress(req('1.2.3.4, 203.0.113.9'), trust('1'))).toBe('203.0.113.9');
    // Two header lines (Node joins them, but be safe with an array too).
    expect(clientAddress(req(['1.2.3.4', '203.0.113.9']), trust('true'))).toBe('203.0.113.9');
  });

  it('a hop count: the entry left of the trusted proxies; spoofed leftmost entries never count', () => {
    // CDN → HAProxy → node: the CDN appended the client, HAProxy appended the CDN.
    const two = trust('2');
    expect(clientAddress(req('198.51.100.7, 203.0.113.9, 10.0.0.2'), two)).toBe('203.0.113.9');
    expect(clientAddress(req('203.0.113.9, 10.0.0.2'), two)).toBe('203.0.113.9');
    // Fewer entries than proxies: the leftmost is the best there is.
    expect(clientAddress(req('10.0.0.2'), two)).toBe('10.0.0.2');
    expect(clientAddress(req(undefined), two)).toBe('10.0.0.5');
  });

  it('a list of proxies (addresses and CIDRs): the rightmost entry that is not a trusted proxy', () => {
    const list = trust('10.0.0.0/8, 192.0.2.10, fd00::/8');
    // The peer is a trusted proxy; so is the hop before it; the client is the next one left.
    expect(clientAddress(req('6.6.6.6, 203.0.113.9, 10.1.2.3'), list)).toBe('203.0.113.9');
    expect(clientAddress(req('6.6.6.6, 203.0.113.9, 192.0.2.10'), list)).toBe('203.0.113.9');
    expect(clientAddress(req('203.0.113.9', 'fd00::1'), list)).toBe('203.0.113.9');
    // A client that connects directly (not from a trusted proxy) cannot pick its address at all.
    expect(clientAddress(req('10.0.0.9, 1.2.3.4', '203.0.113.50'), list)).toBe('203.0.113.50');
    // Every hop trusted: the leftmost.
    expect(clientAddress(req('10.9.9.9, 10.0.0.2'), list)).toBe('10.9.9.9');
    // Garbage entries are not trusted proxies, so the rightmost one is taken: never one further left.
    expect(clientAddress(req('1.2.3.4, garbage'), list)).toBe('garbage');
  });

  it('drops a port that a proxy appended to an entry, so one client is one address', () => {
    expect(clientAddress(req('1.2.3.4, 203.0.113.9:51234'), trust('true'))).toBe('203.0.113.9');
    expect(clientAddress(req('[2001:db8::1]:443'), trust('true'))).toBe('2001:db8::1');
    expect(clientAddress(req('[2001:db8::1]'), trust('true'))).toBe('2001:db8::1');
    expect(clientAddress(req('[::ffff:203.0.113.9]:80'), trust('true'))).toBe('203.0.113.9');
    // A bare IPv6 address keeps its colons.
    expect(clientAddress(req('2001:db8::1'), trust('true'))).toBe('2001:db8::1');
    // A trusted proxy written with its port is still recognised in the list.
    expect(clientAddress(req('6.6.6.6, 203.0.113.9:1, 10.0.0.2:8080', '10.0.0.5'), trust('10.0.0.0/8'))).toBe(
      '203.0.113.9',
    );
    // Not an address with a port: left as it is.
    expect(clientAddress(req('999.1.1.1:80'), trust('true'))).toBe('999.1.1.1:80');
  });

  it('tells whether a socket comes through a trusted proxy', () => {
    expect(trust('false').isProxy('10.0.0.5')).toBe(false);
    expect(trust('2').isProxy('10.0.0.5')).toBe(true);
    const list = trust('10.0.0.0/8,::1');
    expect(list.isProxy('10.0.0.5')).toBe(true);
    expect(list.isProxy('::ffff:10.0.0.5')).toBe(true);
    expect(list.isProxy('::1')).toBe(true);
    expect(list.isProxy('127.0.0.1')).toBe(false);
  });
});
