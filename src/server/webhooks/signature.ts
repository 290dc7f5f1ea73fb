import { createHmac } from 'node:crypto';
import { webhookSignedPayload } from '../../protocol/index.js';

/**
 * The `Parley-Signature` header of a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>" with the secret>`. Each attempt is signed afresh, so a retry is never stale.
 */
export function signWebhook(secret: string, body: string, timestampS: number): string {
  const mac = createHmac('sha256', secret).update(webhookSignedPayload(timestampS, body)).digest('hex');
  return `t=${timestampS},v1=${mac}`;
}
