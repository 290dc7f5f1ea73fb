export * from './common.js';
export * from './envelope.js';
export * from './media.js';
export * from './errors.js';
export * from './client-messages.js';
export * from './server-messages.js';
export * from './registry.js';
export type * from './http.js';
