import { describe, expect, it } from 'vitest';
import { MintTokenBody } from '../../src/protocol/index.js';
import { Claims } from '../../src/server/auth/claims.js';

describe('the server API’s token minting', () => {
  it('takes exactly the claims the server reads (the token CLI’s), plus its lifetime: a new claim cannot be forgotten', () => {
    const minted = Object.keys(MintTokenBody.shape).filter((k) => k !== 'ttlS');
    expect(minted.sort()).toEqual(Object.keys(Claims.shape).sort());
  });
});
