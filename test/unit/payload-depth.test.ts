import { describe, expect, it } from 'vitest';
import { defaults } from '../../src/server/config/defaults.js';
import { decode, pathDeeperThan } from '../../src/server/signaling/codec.js';

/** `depth` nested arrays around 1, as JSON text (deeper than JSON.stringify can write). */
const arrays = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

describe('payload depth (decode, before any schema)', () => {
  it('measures depth without recursion and names where it got too deep', () => {
    expect(pathDeeperThan({ a: { b: [1, { c: 2 }] } }, 3)).toBeNull();
    expect(pathDeeperThan({ a: { b: [1, { c: {} }] } }, 3)).toEqual(['a', 'b', 1, 'c']);
    expect(pathDeeperThan('text', 0)).toBeNull();
    expect(pathDeeperThan(JSON.parse(arrays(200_000)), 16)).toHaveLength(17);
  });

  it('refuses a frame nested past maxPayloadDepth as INVALID_MESSAGE, keeping its correlation', () => {
    const text = `{"type":"consume","correlationId":"c1","payload":{"producerId":"p","transportId":"t","rtpCapabilities":{"x":${arrays(10_000)}}}}`;
    const decoded = decode(text);
    expect(decoded).toMatchObject({
      ok: false,
      code: 'INVALID_MESSAGE',
      correlation: { key: 'correlationId', value: 'c1' },
      details: { type: 'consume', maxDepth: defaults.maxPayloadDepth },
    });
    expect(!decoded.ok && decoded.details?.path).toMatch(/^payload\.rtpCapabilities\.x\[0\]/);
  });

  it('lets the deepest legitimate media parameters through to their schema', () => {
    const rtpParameters = {
      codecs: [
        {
          mimeType: 'audio/opus',
          payloadType: 100,
          clockRate: 48_000,
          parameters: { useinbandfec: 1 },
          rtcpFeedback: [{ type: 'transport-cc', parameter: '' }],
        },
      ],
      encodings: [{ ssrc: 1 }],
    };
    const text = JSON.stringify({
      type: 'produce',
      payload: { transportId: 't', kind: 'audio', rtpParameters },
    });
    expect(decode(text)).toMatchObject({ ok: true, msg: { type: 'produce' } });
  });
});
