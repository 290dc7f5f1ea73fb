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

  it('decode refuses exactly the payloads in which pathDeeperThan finds a path, at every depth around the limit', () => {
    const max = defaults.maxPayloadDepth;
    const shapes = [
      (d: number) => arrays(d),
      (d: number) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`,
      (d: number) => `${'{"a":[1,'.repeat(d)}{}${']}'.repeat(d)}`, // 2 levels per step
      (d: number) => `[1,"x",${'{"k":1,"n":['.repeat(d)}null${']}'.repeat(d)},{}]`,
      (d: number) => `{"wide":[${Array.from({ length: 50 }, () => arrays(d)).join(',')}]}`,
    ];
    let refused = 0;
    let passed = 0;
    for (const shape of shapes) {
      for (let d = 0; d <= max + 3; d++) {
        const payload = `{"rtpCapabilities":${shape(d)}}`;
        const deep = pathDeeperThan(JSON.parse(payload), max);
        const decoded = decode(`{"type":"consume","payload":${payload}}`);
        const tooDeep = !decoded.ok && /nested deeper/.test(decoded.message);
        expect(tooDeep, payload.slice(0, 80)).toBe(deep !== null);
        if (tooDeep) refused++;
        else passed++;
      }
    }
    expect(refused).toBeGreaterThan(10);
    expect(passed).toBeGreaterThan(10);
  });

  it('refuses a relayed payload too deep in a member its schema strips (the compiled checker runs first)', () => {
    const max = defaults.maxPayloadDepth;
    const deepObjects = (d: number) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
    for (const d of [max - 2, max - 1, max, max + 1]) {
      for (const payload of [
        `{"recipientId":"b","callId":"c","candidate":{"candidate":"x","extra":${deepObjects(d)}}}`,
        `{"recipientId":"b","callId":"c","candidate":{"candidate":"x"},"extra":${arrays(d)}}`,
      ]) {
        const deep = pathDeeperThan(JSON.parse(payload), max);
        const decoded = decode(`{"type":"call:ice-candidate","payload":${payload}}`);
        expect(!decoded.ok && /nested deeper/.test(decoded.message), payload.slice(0, 120)).toBe(
          deep !== null,
        );
        // Accepted or not, never spliced: the schema strips the extra member.
        if (decoded.ok) expect(decoded.verbatim).toBeUndefined();
      }
    }
  });
});
