import { describe, expect, it } from 'vitest';
import { ACCEPTED_URL_FORMS, ParleyError, serverUrls, tokenFrom } from '../../src/client/index.js';

describe('serverUrls: every accepted form of a server URL', () => {
  const cases: [input: string, ws: string, http: string][] = [
    ['http://host', 'ws://host/ws', 'http://host'],
    ['http://host/', 'ws://host/ws', 'http://host'],
    ['https://host:8443', 'wss://host:8443/ws', 'https://host:8443'],
    ['http://host/ws', 'ws://host/ws', 'http://host'], // not /ws/ws
    ['https://host/ws/', 'wss://host/ws', 'https://host'],
    ['ws://host', 'ws://host/ws', 'http://host'], // not ws://host/
    ['wss://host/', 'wss://host/ws', 'https://host'],
    ['wss://host/ws', 'wss://host/ws', 'https://host'],
    ['https://host/voice', 'wss://host/voice/ws', 'https://host/voice'],
    ['https://host/voice/ws', 'wss://host/voice/ws', 'https://host/voice'],
    ['wss://host/custom-endpoint', 'wss://host/custom-endpoint', 'https://host'],
    ['ws://host/ws?compat=calls-v0', 'ws://host/ws?compat=calls-v0', 'http://host'],
    ['http://host/?x=1#frag', 'ws://host/ws', 'http://host'],
    ['  http://127.0.0.1:3000  ', 'ws://127.0.0.1:3000/ws', 'http://127.0.0.1:3000'],
  ];
  for (const [input, ws, http] of cases) {
    it(`${input.trim()} → ${ws}`, () => {
      expect(serverUrls(input)).toEqual({ ws, http });
      // Idempotent: the result is itself an accepted form that maps to itself.
      expect(serverUrls(ws).ws).toBe(ws);
    });
  }

  it('anything else is INVALID_URL, naming the input and the accepted forms', () => {
    for (const input of ['ftp://host', 'mailto:a@b.c', 'not a url', '']) {
      let err: unknown;
      try {
        serverUrls(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ParleyError);
      expect(err).toMatchObject({ code: 'INVALID_URL', retryable: false });
      expect((err as ParleyError).details?.accepted).toEqual([...ACCEPTED_URL_FORMS]);
    }
  });
});

describe('tokenFrom: what a token option may give', () => {
  it('a JWT, {token}, or the JSON text of {token}', () => {
    expect(tokenFrom('a.b.c')).toBe('a.b.c');
    expect(tokenFrom({ token: 'a.b.c', userId: 'dev-x' })).toBe('a.b.c');
    expect(tokenFrom(' {"token":"a.b.c","userId":"dev-x"} ')).toBe('a.b.c');
  });

  it('anything else is INVALID_TOKEN saying what it got, never the value', () => {
    const bad: [unknown, RegExp][] = [
      ['', /empty/],
      [null, /got null/],
      [42, /got number/],
      [['a.b.c'], /got an array/],
      [{ token: 42 }, /got object/],
      ['{"jwt":"hidden"}', /got object/],
      ['{broken', /neither a JWT nor JSON/],
    ];
    for (const [value, why] of bad) {
      let err: unknown;
      try {
        tokenFrom(value);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'INVALID_TOKEN' });
      expect((err as ParleyError).reason).toMatch(why);
      expect((err as ParleyError).message).not.toContain('hidden');
    }
  });
});
