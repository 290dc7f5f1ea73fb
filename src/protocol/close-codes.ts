/**
 * WebSocket close codes: defined with the error catalogue in `./errors.ts` (CLOSE_REASONS and
 * ERRORS[code].close), re-exported here for existing imports.
 */
export { CLOSE_CODES, type CloseCodeName } from './errors.js';
