import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TOLERANCE_S,
  WebhookEvent,
  webhookSignedPayload,
} from '../protocol/index.js';

/** Why a webhook was refused: its `reason` is stable, the message is for humans. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
  constructor(
    readonly reason: 'missing-signature' | 'malformed-signature' | 'bad-signature' | 'stale' | 'invalid-body',
    message: string,
  ) {
    super(message);
  }
}

export type WebhookHeaders =
  Headers | Record<string, string | string[] | undefined> | { get(name: string): string | null };

export interface VerifyOptions {
  /** Refuse a timestamp further than this from now (replays). Default 300 s. */
  toleranceS?: number;
  /** Now, in ms since the epoch (tests). Default `Date.now()`. */
  now?: number;
}

/**
 * Checks a webhook from Parley and returns its event. `body` must be the raw bytes as received
 * (parse nothing before): the signature is HMAC-SHA256 of `<t>.<body>` with `WEBHOOK_SECRET`, sent
 * as `Parley-Signature: t=<unix seconds>,v1=<hex>`. Throws WebhookVerificationError when the
 * signature is missing, wrong or older than the tolerance, or the body is not a Parley event.
 * Deduplicate on the event's `id`: a retried delivery repeats it.
 */
export function verifyWebhook(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyOptions = {},
): WebhookEvent {
  const raw = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const header = headerOf(headers, WEBHOOK_SIGNATURE_HEADER);
  if (!header) throw new WebhookVerificationError('missing-signature', 'no Parley-Signature header');
  const parts = new Map(
    header.split(',').map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || !/^[0-9a-f]{64}$/.test(v1)) {
    throw new WebhookVerificationError(
      'malformed-signature',
      'Parley-Signature must be t=<seconds>,v1=<hex>',
    );
  }
  const expected = createHmac('sha256', secret).update(webhookSignedPayload(t, raw)).digest();
  if (!timingSafeEqual(expected, Buffer.from(v1, 'hex'))) {
    throw new WebhookVerificationError('bad-signature', 'the signature does not match the body');
  }
  const nowS = (options.now ?? Date.now()) / 1000;
  if (Math.abs(nowS - t) > (options.toleranceS ?? WEBHOOK_TOLERANCE_S)) {
    throw new WebhookVerificationError('stale', 'the signature timestamp is outside the tolerance (replay?)');
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new WebhookVerificationError('invalid-body', 'the body is not JSON');
  }
  const parsed = WebhookEvent.safeParse(json);
  if (!parsed.success)
    throw new WebhookVerificationError('invalid-body', 'the body is not a Parley webhook event');
  return parsed.data;
}

function headerOf(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}
