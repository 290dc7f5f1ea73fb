/**
 * `parley/server-sdk`: for an application's backend in Node. A typed client of the server API and
 * a verifier for webhooks. It imports nothing of the server, only the protocol's schemas.
 */
export { ParleyAdmin, ParleyAdminError, type ParleyAdminOptions } from './admin-client.js';
export {
  verifyWebhook,
  WebhookVerificationError,
  type VerifyOptions,
  type WebhookHeaders,
} from './verify-webhook.js';
export {
  ADMIN_API,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TOLERANCE_S,
  type AdminOperation,
  type AdminRequest,
  type AdminResponse,
  type WebhookEvent,
  type WebhookEventName,
  type WebhookEventOf,
} from '../protocol/index.js';
