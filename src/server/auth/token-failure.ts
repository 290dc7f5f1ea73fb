/** Why a token was refused. Goes to logs only; clients get a generic 401 / 4401. */
export type TokenFailure =
  'expired' | 'no-expiry' | 'not-yet-valid' | 'bad-signature' | 'bad-algorithm' | 'bad-claims' | 'malformed';
